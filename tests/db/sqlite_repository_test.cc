#include "db/sqlite_repository.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "db_test_util.h"

namespace storeplane::db {
namespace {

using core::IsolationMode;
using core::StoreState;
using testing::BackendTest;
using testing::InsertStoreAudited;
using testing::MakeStore;
using testing::TestAudit;
using testing::UpdateStoreAudited;

class RepositoryStoresTest : public BackendTest {};

core::LabelSelector Selector(std::string_view text) {
  auto parsed = core::LabelSelector::Parse(text);
  EXPECT_TRUE(parsed.ok()) << text;
  return parsed.ok() ? *parsed : core::LabelSelector();
}

std::vector<std::string> Ids(const StorePage& page) {
  std::vector<std::string> ids;
  for (const auto& store : page.items) ids.push_back(store.id);
  return ids;
}

// Lists with `query`, returning the ids, asserting success.
std::vector<std::string> ListIds(Repository& repo, StoreQuery query) {
  auto page = repo.ListStores(query);
  EXPECT_TRUE(page.ok()) << (page.ok() ? "" : page.error().message);
  return page.ok() ? Ids(*page) : std::vector<std::string>{};
}

// Follows next_after_id until the end; returns every id seen and counts the pages.
std::vector<std::string> ListAllPages(Repository& repo, StoreQuery query, int* pages = nullptr) {
  std::vector<std::string> all;
  int count = 0;
  for (;;) {
    auto page = repo.ListStores(query);
    EXPECT_TRUE(page.ok());
    if (!page.ok()) break;
    ++count;
    EXPECT_LE(static_cast<int>(page->items.size()), query.limit);
    for (const auto& store : page->items) all.push_back(store.id);
    if (page->next_after_id.empty()) break;
    EXPECT_EQ(page->next_after_id, page->items.back().id);
    query.after_id = page->next_after_id;
    if (count > 10000) break;
  }
  if (pages != nullptr) *pages = count;
  return all;
}

void ExpectSameStore(const core::Store& got, const core::Store& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.name, want.name);
  EXPECT_EQ(got.environment, want.environment);
  EXPECT_EQ(got.isolation_mode, want.isolation_mode);
  EXPECT_EQ(got.labels, want.labels);
  EXPECT_EQ(got.state, want.state);
  EXPECT_EQ(got.desired_release, want.desired_release);
  EXPECT_EQ(got.current_release, want.current_release);
  EXPECT_EQ(got.last_known_good_release, want.last_known_good_release);
  EXPECT_EQ(got.version, want.version);
  EXPECT_EQ(got.created_at_ms, want.created_at_ms);
  EXPECT_EQ(got.updated_at_ms, want.updated_at_ms);
}

core::Store NextVersion(core::Store store) {
  store.version += 1;
  store.updated_at_ms += 1000;
  return store;
}

// ---- stores: round trips ----

TEST_P(RepositoryStoresTest, InsertThenGetReturnsEveryField) {
  core::Store store = MakeStore("shop-one", "staging", IsolationMode::kDedicated,
                                {{"tier", "gold"}, {"region", "eu"}, {"example.com/team", "web"}});
  store.desired_release = "2024.06.1";
  auto inserted = InsertStoreAudited(*repo_, store);
  ASSERT_TRUE(inserted.ok()) << inserted.error().message;
  ExpectSameStore(*inserted, store);

  auto got = repo_->GetStore("shop-one");
  ASSERT_TRUE(got.ok()) << got.error().message;
  ExpectSameStore(*got, store);
  EXPECT_FALSE(got->current_release.has_value());
  EXPECT_FALSE(got->last_known_good_release.has_value());
}

TEST_P(RepositoryStoresTest, UpdateReplacesTheRowAndBumpsTheVersion) {
  core::Store store = MakeStore("shop", "production", IsolationMode::kShared, {{"tier", "gold"}});
  Insert(store);

  core::Store changed = NextVersion(store);
  changed.name = "Renamed";
  changed.labels = {{"tier", "silver"}, {"canary", ""}};
  changed.state = StoreState::kActive;
  changed.isolation_mode = IsolationMode::kIsolated;
  changed.desired_release = "r2";
  changed.current_release = "r2";
  changed.last_known_good_release = "r1";
  auto updated = UpdateStoreAudited(*repo_, changed, 1);
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  ExpectSameStore(*updated, changed);

  auto got = repo_->GetStore("shop");
  ASSERT_TRUE(got.ok());
  ExpectSameStore(*got, changed);

  // Releases can be cleared again.
  core::Store cleared = NextVersion(changed);
  cleared.desired_release.reset();
  cleared.current_release.reset();
  ASSERT_TRUE(UpdateStoreAudited(*repo_, cleared, 2).ok());
  got = repo_->GetStore("shop");
  ASSERT_TRUE(got.ok());
  ExpectSameStore(*got, cleared);
}

TEST_P(RepositoryStoresTest, CountStoresCountsEveryRowIncludingTombstones) {
  auto count = repo_->CountStores();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 0);
  Insert(MakeStore("a"));
  Insert(MakeStore("b", "production", IsolationMode::kShared, {}, StoreState::kDecommissioned));
  count = repo_->CountStores();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 2);
}

TEST_P(RepositoryStoresTest, DataSurvivesCloseAndReopen) {
  core::Store store = MakeStore("durable", "development", IsolationMode::kIsolated, {{"k", "v"}});
  store.last_known_good_release = "r9";
  Insert(store);
  Reopen();
  auto got = repo_->GetStore("durable");
  ASSERT_TRUE(got.ok()) << got.error().message;
  ExpectSameStore(*got, store);
}

TEST_P(RepositoryStoresTest, PingSucceedsOnAnOpenDatabase) { EXPECT_TRUE(repo_->Ping().ok()); }

// ---- stores: ids are never reused ----

TEST_P(RepositoryStoresTest, InsertOfATakenIdIsAlreadyExists) {
  Insert(MakeStore("taken"));
  auto again = InsertStoreAudited(*repo_, MakeStore("taken", "staging"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(again.error().message, "store id 'taken' is already taken");
  // The original is untouched.
  auto got = repo_->GetStore("taken");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->environment, "production");
}

TEST_P(RepositoryStoresTest, IdOfADecommissionedStoreIsNeverReused) {
  core::Store store = MakeStore("gone");
  Insert(store);
  core::Store tombstone = NextVersion(store);
  tombstone.state = StoreState::kDecommissioned;
  ASSERT_TRUE(UpdateStoreAudited(*repo_, tombstone, 1).ok());

  auto again = InsertStoreAudited(*repo_, MakeStore("gone"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists);
  auto got = repo_->GetStore("gone");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state, StoreState::kDecommissioned);
}

// ---- stores: listing ----

class ListStoresTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    Insert(MakeStore("a-prod", "production", IsolationMode::kShared, {{"tier", "gold"}, {"region", "eu"}},
                     StoreState::kActive));
    Insert(MakeStore("b-prod", "production", IsolationMode::kDedicated, {{"tier", "silver"}, {"region", "us"}},
                     StoreState::kActive));
    Insert(MakeStore("c-stage", "staging", IsolationMode::kShared, {{"tier", "gold"}, {"legacy", "yes"}},
                     StoreState::kRegistered));
    Insert(MakeStore("d-dev", "development", IsolationMode::kIsolated, {}, StoreState::kProvisioning));
    Insert(
        MakeStore("e-prod", "production", IsolationMode::kIsolated, {{"region", "eu"}}, StoreState::kDecommissioned));
  }
};

TEST_P(ListStoresTest, NoFilterListsEverythingInIdOrder) {
  EXPECT_EQ(ListIds(*repo_, {}), (std::vector<std::string>{"a-prod", "b-prod", "c-stage", "d-dev", "e-prod"}));
}

TEST_P(ListStoresTest, FiltersByEnvironment) {
  StoreQuery query;
  query.environment = "production";
  EXPECT_EQ(ListIds(*repo_, query), (std::vector<std::string>{"a-prod", "b-prod", "e-prod"}));
  query.environment = "nowhere";
  EXPECT_TRUE(ListIds(*repo_, query).empty());
}

TEST_P(ListStoresTest, FiltersByIsolationMode) {
  StoreQuery query;
  query.isolation_mode = IsolationMode::kIsolated;
  EXPECT_EQ(ListIds(*repo_, query), (std::vector<std::string>{"d-dev", "e-prod"}));
  query.isolation_mode = IsolationMode::kDedicated;
  EXPECT_EQ(ListIds(*repo_, query), (std::vector<std::string>{"b-prod"}));
}

TEST_P(ListStoresTest, FiltersByState) {
  StoreQuery query;
  query.state = StoreState::kActive;
  EXPECT_EQ(ListIds(*repo_, query), (std::vector<std::string>{"a-prod", "b-prod"}));
  query.state = StoreState::kDecommissioned;
  EXPECT_EQ(ListIds(*repo_, query), (std::vector<std::string>{"e-prod"}));
  query.state = StoreState::kProvisionFailed;
  EXPECT_TRUE(ListIds(*repo_, query).empty());
}

TEST_P(ListStoresTest, CombinesFilters) {
  StoreQuery query;
  query.environment = "production";
  query.isolation_mode = IsolationMode::kIsolated;
  query.state = StoreState::kDecommissioned;
  EXPECT_EQ(ListIds(*repo_, query), (std::vector<std::string>{"e-prod"}));
  query.state = StoreState::kActive;
  EXPECT_TRUE(ListIds(*repo_, query).empty());
}

TEST_P(ListStoresTest, AppliesTheLabelSelector) {
  StoreQuery query;
  query.selector = Selector("tier=gold");
  EXPECT_EQ(ListIds(*repo_, query), (std::vector<std::string>{"a-prod", "c-stage"}));
  query.selector = Selector("region in (eu,us),!legacy");
  EXPECT_EQ(ListIds(*repo_, query), (std::vector<std::string>{"a-prod", "b-prod", "e-prod"}));
  query.selector = Selector("legacy");
  EXPECT_EQ(ListIds(*repo_, query), (std::vector<std::string>{"c-stage"}));
  query.selector = Selector("tier!=gold");
  EXPECT_EQ(ListIds(*repo_, query), (std::vector<std::string>{"b-prod", "d-dev", "e-prod"}));
  query.environment = "production";
  query.selector = Selector("region=eu");
  EXPECT_EQ(ListIds(*repo_, query), (std::vector<std::string>{"a-prod", "e-prod"}));
}

TEST_P(ListStoresTest, AfterIdIsExclusive) {
  StoreQuery query;
  query.after_id = "b-prod";
  EXPECT_EQ(ListIds(*repo_, query), (std::vector<std::string>{"c-stage", "d-dev", "e-prod"}));
  query.after_id = "zzz";
  EXPECT_TRUE(ListIds(*repo_, query).empty());
}

TEST_P(ListStoresTest, NextAfterIdOnlyWhenAFurtherMatchExists) {
  StoreQuery query;
  query.limit = 2;
  query.selector = Selector("tier=gold");
  auto page = repo_->ListStores(query);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Ids(*page), (std::vector<std::string>{"a-prod", "c-stage"}));
  // Exactly `limit` matches exist, so there is no next page, although rows follow.
  EXPECT_EQ(page->next_after_id, "");

  query.limit = 1;
  page = repo_->ListStores(query);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Ids(*page), (std::vector<std::string>{"a-prod"}));
  EXPECT_EQ(page->next_after_id, "a-prod");
}

TEST_P(ListStoresTest, LimitOutOfRangeIsInvalid) {
  StoreQuery query;
  query.limit = 0;
  auto page = repo_->ListStores(query);
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.error().code, ErrorCode::kInvalidArgument);
  query.limit = 1001;
  EXPECT_FALSE(repo_->ListStores(query).ok());
}

// Many stores, so that paging crosses the internal fetch chunks of a selective selector.
class ListStoresPagingTest : public BackendTest {
 protected:
  static constexpr int kStores = 1200;

  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    for (int i = 0; i < kStores; ++i) {
      char id[16];
      std::snprintf(id, sizeof id, "s%05d", i);
      core::Labels labels{{"bucket", std::to_string(i % 7)}};
      if (i % 97 == 0) labels["rare"] = "yes";
      all_.push_back(id);
      if (i % 7 == 3) bucket3_.push_back(id);
      if (i % 97 == 0) rare_.push_back(id);
      const char* env = i % 2 == 0 ? "production" : "staging";
      if (i % 2 == 0) production_.push_back(id);
      pending_.push_back(MakeStore(id, env, IsolationMode::kShared, labels));
    }
    // Submit concurrently so the setup itself is cheap (group commit).
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([this, t] {
        for (std::size_t i = t; i < pending_.size(); i += 8) {
          auto inserted = InsertStoreAudited(*repo_, pending_[i]);
          EXPECT_TRUE(inserted.ok());
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }

  std::vector<core::Store> pending_;
  std::vector<std::string> all_, bucket3_, rare_, production_;
};

TEST_P(ListStoresPagingTest, PagesCoverEverythingExactlyOnce) {
  for (int limit : {1, 7, 50, 1000}) {
    StoreQuery query;
    query.limit = limit;
    int pages = 0;
    auto ids = ListAllPages(*repo_, query, &pages);
    EXPECT_EQ(ids, all_) << "limit " << limit;
    EXPECT_EQ(pages, (kStores + limit - 1) / limit) << "limit " << limit;
  }
}

TEST_P(ListStoresPagingTest, SelectivePagesCrossFetchChunks) {
  StoreQuery query;
  query.limit = 5;
  query.selector = Selector("rare=yes");
  int pages = 0;
  EXPECT_EQ(ListAllPages(*repo_, query, &pages), rare_);
  EXPECT_EQ(pages, static_cast<int>((rare_.size() + 4) / 5));

  query.limit = 40;
  query.selector = Selector("bucket=3");
  EXPECT_EQ(ListAllPages(*repo_, query), bucket3_);

  query.selector = Selector("bucket in (3)");
  query.environment = "production";
  std::vector<std::string> want;
  std::set<std::string> production(production_.begin(), production_.end());
  for (const auto& id : bucket3_) {
    if (production.count(id) != 0) want.push_back(id);
  }
  EXPECT_EQ(ListAllPages(*repo_, query), want);
}

TEST_P(ListStoresPagingTest, SelectorMatchingNothingReturnsAnEmptyLastPage) {
  StoreQuery query;
  query.selector = Selector("bucket=99");
  auto page = repo_->ListStores(query);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->items.empty());
  EXPECT_TRUE(page->next_after_id.empty());
}

TEST_P(ListStoresPagingTest, VisiblePredicateFiltersAndPagesOverVisibleStoresOnly) {
  // Object scope: only production stores are visible; the selector still applies.
  StoreQuery query;
  query.visible = [](const core::Store& store) { return store.environment == "production"; };
  query.limit = 7;
  int pages = 0;
  EXPECT_EQ(ListAllPages(*repo_, query, &pages), production_);
  EXPECT_EQ(pages, static_cast<int>((production_.size() + 6) / 7));

  query.selector = Selector("rare=yes");
  query.limit = 2;
  std::vector<std::string> want;
  std::set<std::string> production(production_.begin(), production_.end());
  for (const auto& id : rare_) {
    if (production.count(id) != 0) want.push_back(id);
  }
  ASSERT_GT(want.size(), 2u);
  EXPECT_EQ(ListAllPages(*repo_, query), want);
}

TEST_P(ListStoresTest, InvisibleStoresDoNotCountTowardsLimitOrCursor) {
  StoreQuery query;
  query.visible = [](const core::Store& store) { return store.id != "b-prod" && store.id != "d-dev"; };
  query.limit = 2;
  auto page = repo_->ListStores(query);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Ids(*page), (std::vector<std::string>{"a-prod", "c-stage"}));
  EXPECT_EQ(page->next_after_id, "c-stage");
  query.after_id = page->next_after_id;
  page = repo_->ListStores(query);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Ids(*page), (std::vector<std::string>{"e-prod"}));
  EXPECT_EQ(page->next_after_id, "");

  // Exactly `limit` visible stores: no next page although invisible rows follow.
  query = {};
  query.visible = [](const core::Store& store) { return store.id <= "b-prod"; };
  query.limit = 2;
  page = repo_->ListStores(query);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Ids(*page), (std::vector<std::string>{"a-prod", "b-prod"}));
  EXPECT_EQ(page->next_after_id, "");

  query.visible = [](const core::Store&) { return false; };
  page = repo_->ListStores(query);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->items.empty());
  EXPECT_EQ(page->next_after_id, "");
}

// ---- stores: update errors ----

TEST_P(RepositoryStoresTest, UpdateWithAStaleVersionIsPreconditionFailed) {
  core::Store store = MakeStore("shop");
  Insert(store);
  core::Store v2 = NextVersion(store);
  ASSERT_TRUE(UpdateStoreAudited(*repo_, v2, 1).ok());

  core::Store stale = NextVersion(store);  // built from version 1 again
  stale.name = "lost update";
  auto result = UpdateStoreAudited(*repo_, stale, 1);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kPreconditionFailed);
  EXPECT_EQ(result.error().message, "store 'shop' has version 2, not 1");
  auto got = repo_->GetStore("shop");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->name, store.name);
}

TEST_P(RepositoryStoresTest, UpdateOfAnUnknownIdIsNotFound) {
  auto result = UpdateStoreAudited(*repo_, NextVersion(MakeStore("ghost")), 1);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kNotFound);
}

TEST_P(RepositoryStoresTest, GetOfAnUnknownIdIsNotFound) {
  auto result = repo_->GetStore("ghost");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(result.error().message, "store 'ghost' not found");
}

TEST_P(RepositoryStoresTest, UpdateThatDoesNotAdvanceTheVersionByOneIsRefused) {
  core::Store store = MakeStore("shop");
  Insert(store);
  auto result = UpdateStoreAudited(*repo_, store, 1);  // version still 1
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kInternal);
}

TEST_P(RepositoryStoresTest, UnreadableRowIsInternalNotACrash) {
  Insert(MakeStore("broken"));
  ASSERT_TRUE(ExecSql("UPDATE stores SET labels_json = 'not json' WHERE id = 'broken'"));
  auto got = repo_->GetStore("broken");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, ErrorCode::kInternal);
  auto listed = repo_->ListStores({});
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().code, ErrorCode::kInternal);
}

// ---- principals and tokens ----

Principal MakePrincipal(std::string id) {
  Principal principal;
  principal.id = std::move(id);
  principal.name = "Operator " + principal.id;
  principal.kind = "operator";
  principal.roles = {"operator"};
  principal.created_at_ms = 1000;
  return principal;
}

TokenRecord MakeToken(std::string id, std::string hash, std::optional<std::int64_t> expires_at_ms = std::nullopt) {
  TokenRecord token;
  token.id = std::move(id);
  token.token_hash = std::move(hash);
  token.description = "laptop";
  token.created_at_ms = 1000;
  token.expires_at_ms = expires_at_ms;
  return token;
}

Status CreateToken(Repository& repo, const Principal& principal, const TokenRecord& token) {
  WriteBatch batch;
  batch.effects.push_back(InsertTokenEffect{principal, token});
  batch.audit.push_back(TestAudit("token.create", "token/" + token.id));
  auto applied = repo.Apply(batch);
  return applied.ok() ? Status::Ok() : Status(applied.error());
}

Status RevokeToken(Repository& repo, const std::string& token_id, std::int64_t at_ms) {
  WriteBatch batch;
  batch.effects.push_back(RevokeTokenEffect{token_id, at_ms});
  batch.audit.push_back(TestAudit("token.revoke", "token/" + token_id));
  auto applied = repo.Apply(batch);
  return applied.ok() ? Status::Ok() : Status(applied.error());
}

TEST_P(RepositoryStoresTest, TokenLookupByHashAndById) {
  ASSERT_TRUE(CreateToken(*repo_, MakePrincipal("alice"), MakeToken("tok_a", "hash-a", 99'000)).ok());
  auto found = repo_->FindTokenByHash("hash-a");
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_TRUE(found->has_value());
  const TokenRecord& token = **found;
  EXPECT_EQ(token.id, "tok_a");
  EXPECT_EQ(token.token_hash, "hash-a");
  EXPECT_EQ(token.principal_id, "alice");
  EXPECT_EQ(token.description, "laptop");
  EXPECT_EQ(token.created_at_ms, 1000);
  EXPECT_EQ(token.expires_at_ms, 99'000);
  EXPECT_FALSE(token.revoked_at_ms.has_value());

  auto by_id = repo_->GetToken("tok_a");
  ASSERT_TRUE(by_id.ok());
  ASSERT_TRUE(by_id->has_value());
  EXPECT_EQ((*by_id)->token_hash, "hash-a");

  auto unknown = repo_->FindTokenByHash("hash-b");
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->has_value());
  auto unknown_id = repo_->GetToken("tok_none");
  ASSERT_TRUE(unknown_id.ok());
  EXPECT_FALSE(unknown_id->has_value());

  auto count = repo_->CountPrincipals();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 1);
}

TEST_P(RepositoryStoresTest, SecondTokenUpsertsThePrincipal) {
  ASSERT_TRUE(CreateToken(*repo_, MakePrincipal("alice"), MakeToken("tok_1", "hash-1")).ok());
  Principal renamed = MakePrincipal("alice");
  renamed.name = "Alice Renamed";
  ASSERT_TRUE(CreateToken(*repo_, renamed, MakeToken("tok_2", "hash-2")).ok());
  ASSERT_TRUE(CreateToken(*repo_, MakePrincipal("ci"), MakeToken("tok_3", "hash-3")).ok());
  auto count = repo_->CountPrincipals();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 2);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM principals WHERE name = 'Alice Renamed'"), 1);

  auto alice = repo_->ListTokens(std::string("alice"));
  ASSERT_TRUE(alice.ok());
  ASSERT_EQ(alice->size(), 2u);
  EXPECT_EQ((*alice)[0].id, "tok_1");
  EXPECT_EQ((*alice)[1].id, "tok_2");
  auto all = repo_->ListTokens(std::nullopt);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
}

TEST_P(RepositoryStoresTest, TakenTokenHashOrIdIsAlreadyExistsAndChangesNothing) {
  ASSERT_TRUE(CreateToken(*repo_, MakePrincipal("alice"), MakeToken("tok_a", "hash-a")).ok());
  Status st = CreateToken(*repo_, MakePrincipal("bob"), MakeToken("tok_b", "hash-a"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kAlreadyExists);
  st = CreateToken(*repo_, MakePrincipal("bob"), MakeToken("tok_a", "hash-b"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kAlreadyExists);
  // bob's principal row went with the failed batches.
  auto count = repo_->CountPrincipals();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 1);
}

TEST_P(RepositoryStoresTest, TokenOfAnotherPrincipalOrWithoutIdIsRefused) {
  TokenRecord token = MakeToken("tok_a", "hash-a");
  token.principal_id = "bob";
  Status st = CreateToken(*repo_, MakePrincipal("alice"), token);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kInternal);
  st = CreateToken(*repo_, MakePrincipal("alice"), MakeToken("", "hash-a"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kInternal);
}

TEST_P(RepositoryStoresTest, RevokedTokensAreStillFoundWithTheirRevocationTime) {
  ASSERT_TRUE(CreateToken(*repo_, MakePrincipal("alice"), MakeToken("tok_a", "hash-a")).ok());
  ASSERT_TRUE(RevokeToken(*repo_, "tok_a", 5000).ok());
  auto found = repo_->FindTokenByHash("hash-a");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->revoked_at_ms, 5000);

  Status again = RevokeToken(*repo_, "tok_a", 6000);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  EXPECT_EQ(again.error().message, "token 'tok_a' is already revoked");
  found = repo_->FindTokenByHash("hash-a");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ((*found)->revoked_at_ms, 5000);  // the first revocation stands

  Status unknown = RevokeToken(*repo_, "tok_none", 6000);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
}

// ---- change requests ----

ChangeRequest MakeChange(std::string id, std::int64_t created_at_ms) {
  ChangeRequest change;
  change.id = std::move(id);
  change.action = "deploy.request";
  change.target = "store/shop";
  change.environment = "production";
  change.requester = "alice";
  change.request_body = R"({"release":"r2"})";
  change.approval_rule = "prod-two-person";
  change.approvals_needed = 2;
  change.status = "pending";
  change.created_at_ms = created_at_ms;
  change.expires_at_ms = created_at_ms + 3'600'000;
  return change;
}

Result<WriteResult> ApplyChange(Repository& repo, Effect effect) {
  WriteBatch batch;
  batch.effects.push_back(std::move(effect));
  batch.audit.push_back(TestAudit("change.approve", "change/x"));
  return repo.Apply(batch);
}

void ExpectSameChange(const ChangeRequest& got, const ChangeRequest& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.action, want.action);
  EXPECT_EQ(got.target, want.target);
  EXPECT_EQ(got.environment, want.environment);
  EXPECT_EQ(got.requester, want.requester);
  EXPECT_EQ(got.request_body, want.request_body);
  EXPECT_EQ(got.approval_rule, want.approval_rule);
  EXPECT_EQ(got.approvals_needed, want.approvals_needed);
  EXPECT_EQ(got.approvers, want.approvers);
  EXPECT_EQ(got.status, want.status);
  EXPECT_EQ(got.outcome, want.outcome);
  EXPECT_EQ(got.created_at_ms, want.created_at_ms);
  EXPECT_EQ(got.expires_at_ms, want.expires_at_ms);
  EXPECT_EQ(got.version, want.version);
}

TEST_P(RepositoryStoresTest, ChangeRequestRoundTripAndVersionedUpdate) {
  ChangeRequest change = MakeChange("chg_1", 10'000);
  auto inserted = ApplyChange(*repo_, InsertChangeEffect{change});
  ASSERT_TRUE(inserted.ok()) << inserted.error().message;
  ASSERT_EQ(inserted->changes.size(), 1u);
  ExpectSameChange(inserted->changes[0], change);
  auto got = repo_->GetChange("chg_1");
  ASSERT_TRUE(got.ok()) << got.error().message;
  ExpectSameChange(*got, change);

  ChangeRequest approved = change;
  approved.approvers = {"bob", "carol"};
  approved.status = "executed";
  approved.outcome = "deployed r2";
  approved.version = 2;
  auto updated = ApplyChange(*repo_, UpdateChangeEffect{approved, 1});
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  got = repo_->GetChange("chg_1");
  ASSERT_TRUE(got.ok());
  ExpectSameChange(*got, approved);

  // A second approver working from version 1 loses.
  ChangeRequest stale = change;
  stale.approvers = {"dave"};
  stale.version = 2;
  auto lost = ApplyChange(*repo_, UpdateChangeEffect{stale, 1});
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.error().code, ErrorCode::kPreconditionFailed);
  EXPECT_EQ(lost.error().message, "change request 'chg_1' has version 2, not 1");

  ChangeRequest ghost = MakeChange("chg_ghost", 1);
  ghost.version = 2;
  auto missing = ApplyChange(*repo_, UpdateChangeEffect{ghost, 1});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);

  auto not_advancing = ApplyChange(*repo_, UpdateChangeEffect{approved, 2});
  ASSERT_FALSE(not_advancing.ok());
  EXPECT_EQ(not_advancing.error().code, ErrorCode::kInternal);

  auto duplicate = ApplyChange(*repo_, InsertChangeEffect{MakeChange("chg_1", 1)});
  ASSERT_FALSE(duplicate.ok());
  EXPECT_EQ(duplicate.error().code, ErrorCode::kAlreadyExists);

  auto unknown = repo_->GetChange("chg_none");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
}

TEST_P(RepositoryStoresTest, ListChangesNewestFirstFilteredByStatus) {
  for (int i = 1; i <= 4; ++i) {
    ChangeRequest change = MakeChange("chg_" + std::to_string(i), i * 1000);
    if (i % 2 == 0) change.status = "rejected";
    ASSERT_TRUE(ApplyChange(*repo_, InsertChangeEffect{change}).ok());
  }
  auto all = repo_->ListChanges(std::nullopt, 10);
  ASSERT_TRUE(all.ok());
  std::vector<std::string> ids;
  for (const auto& change : *all) ids.push_back(change.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"chg_4", "chg_3", "chg_2", "chg_1"}));

  auto pending = repo_->ListChanges(std::string("pending"), 10);
  ASSERT_TRUE(pending.ok());
  ids.clear();
  for (const auto& change : *pending) ids.push_back(change.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"chg_3", "chg_1"}));

  auto limited = repo_->ListChanges(std::nullopt, 1);
  ASSERT_TRUE(limited.ok());
  ASSERT_EQ(limited->size(), 1u);
  EXPECT_EQ(limited->front().id, "chg_4");
  EXPECT_FALSE(repo_->ListChanges(std::nullopt, 0).ok());
}

// Ids compare byte by byte on both back ends (SQLite's BINARY; PostgreSQL's COLLATE "C"
// columns), whatever the database's locale: upper case before lower case, '-' before '_'.
TEST_P(RepositoryStoresTest, IdsAreOrderedByteByByte) {
  for (const char* id : {"b", "B", "a_x", "a-x", "Z", "a"}) Insert(MakeStore(id));
  StoreQuery query;
  EXPECT_EQ(ListIds(*repo_, query), (std::vector<std::string>{"B", "Z", "a", "a-x", "a_x", "b"}));
  query.after_id = "Z";
  query.limit = 2;
  auto page = repo_->ListStores(query);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Ids(*page), (std::vector<std::string>{"a", "a-x"}));
  EXPECT_EQ(page->next_after_id, "a-x");

  for (const char* id : {"chg_b", "chg_B", "chg_a"}) {
    ASSERT_TRUE(ApplyChange(*repo_, InsertChangeEffect{MakeChange(id, 1000)}).ok());
  }
  auto changes = repo_->ListChanges(std::nullopt, 10);
  ASSERT_TRUE(changes.ok());
  std::vector<std::string> ids;
  for (const auto& change : *changes) ids.push_back(change.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"chg_b", "chg_a", "chg_B"}));  // same time: id descending
}

// ---- idempotency ----

IdempotencyRecord MakeIdempotency(std::string key) {
  IdempotencyRecord record;
  record.principal_id = "alice";
  record.key = std::move(key);
  record.request_hash = "abc123";
  record.status = 201;
  record.response_body = R"({"id":"shop"})";
  record.location = "/v1/stores/shop";
  record.created_at_ms = 4242;
  return record;
}

TEST_P(RepositoryStoresTest, IdempotencyRecordIsStoredWithTheStore) {
  auto inserted = InsertStoreAudited(*repo_, MakeStore("shop"), MakeIdempotency("key-1"));
  ASSERT_TRUE(inserted.ok()) << inserted.error().message;
  auto found = repo_->FindIdempotency("alice", "key-1");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  const IdempotencyRecord& record = **found;
  EXPECT_EQ(record.principal_id, "alice");
  EXPECT_EQ(record.key, "key-1");
  EXPECT_EQ(record.request_hash, "abc123");
  EXPECT_EQ(record.status, 201);
  EXPECT_EQ(record.response_body, R"({"id":"shop"})");
  EXPECT_EQ(record.location, "/v1/stores/shop");
  EXPECT_EQ(record.created_at_ms, 4242);

  // Keys are scoped per principal.
  auto other = repo_->FindIdempotency("bob", "key-1");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
}

TEST_P(RepositoryStoresTest, FailedStoreInsertLeavesNoIdempotencyRecord) {
  Insert(MakeStore("shop"));
  auto again = InsertStoreAudited(*repo_, MakeStore("shop"), MakeIdempotency("key-2"));
  ASSERT_FALSE(again.ok());
  auto found = repo_->FindIdempotency("alice", "key-2");
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
}

TEST_P(RepositoryStoresTest, ReusedIdempotencyKeyLeavesNoStore) {
  ASSERT_TRUE(InsertStoreAudited(*repo_, MakeStore("first"), MakeIdempotency("key-3")).ok());
  auto second = InsertStoreAudited(*repo_, MakeStore("second"), MakeIdempotency("key-3"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::kConflict);
  auto got = repo_->GetStore("second");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, ErrorCode::kNotFound);
}

// ---- concurrent writers: the database decides, exactly one wins ----

// Runs `attempt(i)` on kWriters threads at once; counts the outcomes by error code.
struct Outcomes {
  std::atomic<int> ok{0}, already_exists{0}, conflict{0}, precondition_failed{0}, other{0};
};
template <typename F>
void RunConcurrently(int writers, Outcomes& outcomes, F attempt) {
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < writers; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      Status st = attempt(i);
      if (st.ok()) {
        ++outcomes.ok;
      } else if (st.error().code == ErrorCode::kAlreadyExists) {
        ++outcomes.already_exists;
      } else if (st.error().code == ErrorCode::kConflict) {
        ++outcomes.conflict;
      } else if (st.error().code == ErrorCode::kPreconditionFailed) {
        ++outcomes.precondition_failed;
      } else {
        ++outcomes.other;
        ADD_FAILURE() << "unexpected outcome: " << st.error().message;
      }
    });
  }
  go = true;
  for (auto& thread : threads) thread.join();
}

constexpr int kWriters = 8;

TEST_P(RepositoryStoresTest, ConcurrentUsesOfOneIdempotencyKeyCommitOnce) {
  Outcomes outcomes;
  RunConcurrently(kWriters, outcomes, [&](int i) -> Status {
    auto inserted = InsertStoreAudited(*repo_, MakeStore("s" + std::to_string(i)), MakeIdempotency("key-race"));
    return inserted.ok() ? Status::Ok() : Status(inserted.error());
  });
  EXPECT_EQ(outcomes.ok.load(), 1);
  EXPECT_EQ(outcomes.conflict.load(), kWriters - 1);
  auto count = repo_->CountStores();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 1) << "the losers' stores went with their batches";
  auto audit = repo_->ListAudit(AuditQuery{});
  ASSERT_TRUE(audit.ok());
  EXPECT_EQ(audit->items.size(), 1u);
}

TEST_P(RepositoryStoresTest, ConcurrentApproversOfOneVersionOneWins) {
  ChangeRequest change = MakeChange("chg_race", 10'000);
  ASSERT_TRUE(ApplyChange(*repo_, InsertChangeEffect{change}).ok());
  Outcomes outcomes;
  RunConcurrently(kWriters, outcomes, [&](int i) -> Status {
    ChangeRequest approved = change;
    approved.approvers = {"approver-" + std::to_string(i)};
    approved.version = 2;
    auto applied = ApplyChange(*repo_, UpdateChangeEffect{approved, 1});
    return applied.ok() ? Status::Ok() : Status(applied.error());
  });
  EXPECT_EQ(outcomes.ok.load(), 1);
  EXPECT_EQ(outcomes.precondition_failed.load(), kWriters - 1);
  auto got = repo_->GetChange("chg_race");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->approvers.size(), 1u);
}

TEST_P(RepositoryStoresTest, ConcurrentTokensWithOneHashRegisterOnce) {
  Outcomes outcomes;
  RunConcurrently(kWriters, outcomes, [&](int i) -> Status {
    return CreateToken(*repo_, MakePrincipal("p" + std::to_string(i)),
                       MakeToken("tok_" + std::to_string(i), "hash-race"));
  });
  EXPECT_EQ(outcomes.ok.load(), 1);
  EXPECT_EQ(outcomes.already_exists.load(), kWriters - 1);
  auto tokens = repo_->ListTokens(std::nullopt);
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 1u);
  auto count = repo_->CountPrincipals();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 1) << "only the winner's principal row was kept";
  EXPECT_EQ((*tokens)[0].principal_id, "p" + (*tokens)[0].id.substr(4));
}

TEST_P(RepositoryStoresTest, PostgresSchemaRefusesDeletesAndValuesOutsideTheClosedSets) {
  if (!postgres()) GTEST_SKIP() << "SQLite's schema v1/v2 has no such CHECKs or triggers";
  Insert(MakeStore("kept"));
  ASSERT_TRUE(CreateToken(*repo_, MakePrincipal("alice"), MakeToken("tok_a", "hash-a")).ok());
  ASSERT_TRUE(ApplyChange(*repo_, InsertChangeEffect{MakeChange("chg_1", 1000)}).ok());
  EXPECT_FALSE(ExecSql("DELETE FROM stores WHERE id = 'kept'"));
  EXPECT_FALSE(ExecSql("UPDATE stores SET isolation_mode = 'sharedish'"));
  EXPECT_FALSE(ExecSql("UPDATE stores SET version = 0"));
  EXPECT_FALSE(ExecSql("UPDATE principals SET kind = 'robot'"));
  EXPECT_FALSE(ExecSql("UPDATE change_requests SET status = 'maybe'"));
  EXPECT_FALSE(ExecSql("UPDATE change_requests SET version = 0"));
  EXPECT_FALSE(
      ExecSql("INSERT INTO tokens (token_hash, principal_id, created_at_ms, id) VALUES ('h', 'nobody', 1, 't')"))
      << "a token belongs to a known principal";
  EXPECT_FALSE(
      ExecSql("INSERT INTO tokens (token_hash, principal_id, created_at_ms, id) VALUES ('h', 'alice', 1, "
              "'tok_a')"))
      << "token ids are unique";
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM stores"), 1);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM tokens"), 1);

  // A principal of an unknown kind fails its whole batch (a CHECK: kConflict).
  Principal robot = MakePrincipal("robot");
  robot.kind = "robot";
  Status st = CreateToken(*repo_, robot, MakeToken("tok_r", "hash-r"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kConflict);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM principals"), 1);
}

INSTANTIATE_BACKENDS(RepositoryStoresTest);
INSTANTIATE_BACKENDS(ListStoresTest);
INSTANTIATE_BACKENDS(ListStoresPagingTest);

// ---- options ----

TEST(SqliteRepositoryOptionsTest, InvalidOptionsAreRefused) {
  testing::TempDir dir;
  SqliteOptions options;
  options.path = (dir.path() / "db.sqlite").string();
  options.read_connections = 0;
  EXPECT_FALSE(OpenSqliteRepository(options).ok());
  options.read_connections = 1;
  options.max_batch = 0;
  EXPECT_FALSE(OpenSqliteRepository(options).ok());
  options.path.clear();
  options.max_batch = 1;
  EXPECT_FALSE(OpenSqliteRepository(options).ok());
}

}  // namespace
}  // namespace storeplane::db
