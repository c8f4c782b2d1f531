#include "db/sqlite_repository.h"

#include <gtest/gtest.h>

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
using testing::MakeStore;
using testing::RepositoryTest;

using SqliteRepositoryTest = RepositoryTest;

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

TEST_F(SqliteRepositoryTest, InsertThenGetReturnsEveryField) {
  core::Store store = MakeStore("shop-one", "staging", IsolationMode::kDedicated,
                                {{"tier", "gold"}, {"region", "eu"}, {"example.com/team", "web"}});
  store.desired_release = "2024.06.1";
  auto inserted = repo_->InsertStore(store, std::nullopt);
  ASSERT_TRUE(inserted.ok()) << inserted.error().message;
  ExpectSameStore(*inserted, store);

  auto got = repo_->GetStore("shop-one");
  ASSERT_TRUE(got.ok()) << got.error().message;
  ExpectSameStore(*got, store);
  EXPECT_FALSE(got->current_release.has_value());
  EXPECT_FALSE(got->last_known_good_release.has_value());
}

TEST_F(SqliteRepositoryTest, UpdateReplacesTheRowAndBumpsTheVersion) {
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
  auto updated = repo_->UpdateStore(changed, 1);
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  ExpectSameStore(*updated, changed);

  auto got = repo_->GetStore("shop");
  ASSERT_TRUE(got.ok());
  ExpectSameStore(*got, changed);

  // Releases can be cleared again.
  core::Store cleared = NextVersion(changed);
  cleared.desired_release.reset();
  cleared.current_release.reset();
  ASSERT_TRUE(repo_->UpdateStore(cleared, 2).ok());
  got = repo_->GetStore("shop");
  ASSERT_TRUE(got.ok());
  ExpectSameStore(*got, cleared);
}

TEST_F(SqliteRepositoryTest, CountStoresCountsEveryRowIncludingTombstones) {
  auto count = repo_->CountStores();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 0);
  Insert(MakeStore("a"));
  Insert(MakeStore("b", "production", IsolationMode::kShared, {}, StoreState::kDecommissioned));
  count = repo_->CountStores();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 2);
}

TEST_F(SqliteRepositoryTest, DataSurvivesCloseAndReopen) {
  core::Store store = MakeStore("durable", "development", IsolationMode::kIsolated, {{"k", "v"}});
  store.last_known_good_release = "r9";
  Insert(store);
  Reopen();
  auto got = repo_->GetStore("durable");
  ASSERT_TRUE(got.ok()) << got.error().message;
  ExpectSameStore(*got, store);
}

TEST_F(SqliteRepositoryTest, PingSucceedsOnAnOpenDatabase) { EXPECT_TRUE(repo_->Ping().ok()); }

// ---- stores: ids are never reused ----

TEST_F(SqliteRepositoryTest, InsertOfATakenIdIsAlreadyExists) {
  Insert(MakeStore("taken"));
  auto again = repo_->InsertStore(MakeStore("taken", "staging"), std::nullopt);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(again.error().message, "store id 'taken' is already taken");
  // The original is untouched.
  auto got = repo_->GetStore("taken");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->environment, "production");
}

TEST_F(SqliteRepositoryTest, IdOfADecommissionedStoreIsNeverReused) {
  core::Store store = MakeStore("gone");
  Insert(store);
  core::Store tombstone = NextVersion(store);
  tombstone.state = StoreState::kDecommissioned;
  ASSERT_TRUE(repo_->UpdateStore(tombstone, 1).ok());

  auto again = repo_->InsertStore(MakeStore("gone"), std::nullopt);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists);
  auto got = repo_->GetStore("gone");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state, StoreState::kDecommissioned);
}

// ---- stores: listing ----

class ListStoresTest : public RepositoryTest {
 protected:
  void SetUp() override {
    RepositoryTest::SetUp();
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

TEST_F(ListStoresTest, NoFilterListsEverythingInIdOrder) {
  EXPECT_EQ(ListIds(*repo_, {}), (std::vector<std::string>{"a-prod", "b-prod", "c-stage", "d-dev", "e-prod"}));
}

TEST_F(ListStoresTest, FiltersByEnvironment) {
  StoreQuery query;
  query.environment = "production";
  EXPECT_EQ(ListIds(*repo_, query), (std::vector<std::string>{"a-prod", "b-prod", "e-prod"}));
  query.environment = "nowhere";
  EXPECT_TRUE(ListIds(*repo_, query).empty());
}

TEST_F(ListStoresTest, FiltersByIsolationMode) {
  StoreQuery query;
  query.isolation_mode = IsolationMode::kIsolated;
  EXPECT_EQ(ListIds(*repo_, query), (std::vector<std::string>{"d-dev", "e-prod"}));
  query.isolation_mode = IsolationMode::kDedicated;
  EXPECT_EQ(ListIds(*repo_, query), (std::vector<std::string>{"b-prod"}));
}

TEST_F(ListStoresTest, FiltersByState) {
  StoreQuery query;
  query.state = StoreState::kActive;
  EXPECT_EQ(ListIds(*repo_, query), (std::vector<std::string>{"a-prod", "b-prod"}));
  query.state = StoreState::kDecommissioned;
  EXPECT_EQ(ListIds(*repo_, query), (std::vector<std::string>{"e-prod"}));
  query.state = StoreState::kProvisionFailed;
  EXPECT_TRUE(ListIds(*repo_, query).empty());
}

TEST_F(ListStoresTest, CombinesFilters) {
  StoreQuery query;
  query.environment = "production";
  query.isolation_mode = IsolationMode::kIsolated;
  query.state = StoreState::kDecommissioned;
  EXPECT_EQ(ListIds(*repo_, query), (std::vector<std::string>{"e-prod"}));
  query.state = StoreState::kActive;
  EXPECT_TRUE(ListIds(*repo_, query).empty());
}

TEST_F(ListStoresTest, AppliesTheLabelSelector) {
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

TEST_F(ListStoresTest, AfterIdIsExclusive) {
  StoreQuery query;
  query.after_id = "b-prod";
  EXPECT_EQ(ListIds(*repo_, query), (std::vector<std::string>{"c-stage", "d-dev", "e-prod"}));
  query.after_id = "zzz";
  EXPECT_TRUE(ListIds(*repo_, query).empty());
}

TEST_F(ListStoresTest, NextAfterIdOnlyWhenAFurtherMatchExists) {
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

TEST_F(ListStoresTest, LimitOutOfRangeIsInvalid) {
  StoreQuery query;
  query.limit = 0;
  auto page = repo_->ListStores(query);
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.error().code, ErrorCode::kInvalidArgument);
  query.limit = 1001;
  EXPECT_FALSE(repo_->ListStores(query).ok());
}

// Many stores, so that paging crosses the internal fetch chunks of a selective selector.
class ListStoresPagingTest : public RepositoryTest {
 protected:
  static constexpr int kStores = 1200;

  void SetUp() override {
    RepositoryTest::SetUp();
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
          auto inserted = repo_->InsertStore(pending_[i], std::nullopt);
          EXPECT_TRUE(inserted.ok());
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }

  std::vector<core::Store> pending_;
  std::vector<std::string> all_, bucket3_, rare_, production_;
};

TEST_F(ListStoresPagingTest, PagesCoverEverythingExactlyOnce) {
  for (int limit : {1, 7, 50, 1000}) {
    StoreQuery query;
    query.limit = limit;
    int pages = 0;
    auto ids = ListAllPages(*repo_, query, &pages);
    EXPECT_EQ(ids, all_) << "limit " << limit;
    EXPECT_EQ(pages, (kStores + limit - 1) / limit) << "limit " << limit;
  }
}

TEST_F(ListStoresPagingTest, SelectivePagesCrossFetchChunks) {
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

TEST_F(ListStoresPagingTest, SelectorMatchingNothingReturnsAnEmptyLastPage) {
  StoreQuery query;
  query.selector = Selector("bucket=99");
  auto page = repo_->ListStores(query);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->items.empty());
  EXPECT_TRUE(page->next_after_id.empty());
}

// ---- stores: update errors ----

TEST_F(SqliteRepositoryTest, UpdateWithAStaleVersionIsPreconditionFailed) {
  core::Store store = MakeStore("shop");
  Insert(store);
  core::Store v2 = NextVersion(store);
  ASSERT_TRUE(repo_->UpdateStore(v2, 1).ok());

  core::Store stale = NextVersion(store);  // built from version 1 again
  stale.name = "lost update";
  auto result = repo_->UpdateStore(stale, 1);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kPreconditionFailed);
  EXPECT_EQ(result.error().message, "store 'shop' has version 2, not 1");
  auto got = repo_->GetStore("shop");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->name, store.name);
}

TEST_F(SqliteRepositoryTest, UpdateOfAnUnknownIdIsNotFound) {
  auto result = repo_->UpdateStore(NextVersion(MakeStore("ghost")), 1);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kNotFound);
}

TEST_F(SqliteRepositoryTest, GetOfAnUnknownIdIsNotFound) {
  auto result = repo_->GetStore("ghost");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(result.error().message, "store 'ghost' not found");
}

TEST_F(SqliteRepositoryTest, UpdateThatDoesNotAdvanceTheVersionByOneIsRefused) {
  core::Store store = MakeStore("shop");
  Insert(store);
  auto result = repo_->UpdateStore(store, 1);  // version still 1
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kInternal);
}

TEST_F(SqliteRepositoryTest, UnreadableRowIsInternalNotACrash) {
  Insert(MakeStore("broken"));
  ASSERT_EQ(testing::ExecRaw(options_.path, "UPDATE stores SET labels_json = 'not json' WHERE id = 'broken'"),
            SQLITE_OK);
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
  principal.roles = {"stores.read", "stores.write"};
  principal.created_at_ms = 1000;
  return principal;
}

TokenRecord MakeToken(std::string hash, std::optional<std::int64_t> expires_at_ms = std::nullopt) {
  TokenRecord token;
  token.token_hash = std::move(hash);
  token.description = "laptop";
  token.created_at_ms = 1000;
  token.expires_at_ms = expires_at_ms;
  return token;
}

TEST_F(SqliteRepositoryTest, TokenLookupFindsThePrincipal) {
  Principal alice = MakePrincipal("alice");
  ASSERT_TRUE(repo_->InsertPrincipalWithToken(alice, MakeToken("hash-a")).ok());
  auto found = repo_->FindPrincipalByTokenHash("hash-a", 5000);
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->id, "alice");
  EXPECT_EQ((*found)->name, alice.name);
  EXPECT_EQ((*found)->kind, "operator");
  EXPECT_EQ((*found)->roles, alice.roles);
  EXPECT_EQ((*found)->created_at_ms, 1000);

  auto unknown = repo_->FindPrincipalByTokenHash("hash-b", 5000);
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->has_value());

  auto count = repo_->CountPrincipals();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 1);
}

TEST_F(SqliteRepositoryTest, ExpiredTokensAreIgnored) {
  ASSERT_TRUE(repo_->InsertPrincipalWithToken(MakePrincipal("svc"), MakeToken("hash-e", 10'000)).ok());
  auto before = repo_->FindPrincipalByTokenHash("hash-e", 9'999);
  ASSERT_TRUE(before.ok());
  EXPECT_TRUE(before->has_value());
  auto at = repo_->FindPrincipalByTokenHash("hash-e", 10'000);
  ASSERT_TRUE(at.ok());
  EXPECT_FALSE(at->has_value());
  auto after = repo_->FindPrincipalByTokenHash("hash-e", 20'000);
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(after->has_value());
}

TEST_F(SqliteRepositoryTest, PrincipalAndTokenAreInsertedAtomically) {
  ASSERT_TRUE(repo_->InsertPrincipalWithToken(MakePrincipal("alice"), MakeToken("hash-a")).ok());
  // The token hash is taken, so bob must not be created either.
  Status st = repo_->InsertPrincipalWithToken(MakePrincipal("bob"), MakeToken("hash-a"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kAlreadyExists);
  auto count = repo_->CountPrincipals();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 1);

  st = repo_->InsertPrincipalWithToken(MakePrincipal("alice"), MakeToken("hash-other"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kAlreadyExists);
  auto other = repo_->FindPrincipalByTokenHash("hash-other", 0);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
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

TEST_F(SqliteRepositoryTest, IdempotencyRecordIsStoredWithTheStore) {
  auto inserted = repo_->InsertStore(MakeStore("shop"), MakeIdempotency("key-1"));
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

TEST_F(SqliteRepositoryTest, FailedStoreInsertLeavesNoIdempotencyRecord) {
  Insert(MakeStore("shop"));
  auto again = repo_->InsertStore(MakeStore("shop"), MakeIdempotency("key-2"));
  ASSERT_FALSE(again.ok());
  auto found = repo_->FindIdempotency("alice", "key-2");
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
}

TEST_F(SqliteRepositoryTest, ReusedIdempotencyKeyLeavesNoStore) {
  ASSERT_TRUE(repo_->InsertStore(MakeStore("first"), MakeIdempotency("key-3")).ok());
  auto second = repo_->InsertStore(MakeStore("second"), MakeIdempotency("key-3"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::kConflict);
  auto got = repo_->GetStore("second");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, ErrorCode::kNotFound);
}

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
