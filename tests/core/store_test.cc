// Store field rules, registration and patches (src/core/store.h).
#include "core/store.h"
#include "core/time_format.h"

#include <gtest/gtest.h>

#include <string>

namespace storeplane::core {
namespace {

constexpr std::int64_t kNow = 1'780'000'000'000;

StoreRegistration ValidRegistration() {
  StoreRegistration req;
  req.id = "shop-eu-01";
  req.name = "EU flagship";
  req.environment = "production";
  req.isolation_mode = "dedicated";
  req.labels = {{"region", "eu-west-1"}, {"team", "team-payments"}};
  return req;
}

void ExpectInvalid(const Status& s, std::string_view field, std::string_view message_part) {
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.error().field, field);
  EXPECT_NE(s.error().message.find(message_part), std::string::npos) << s.error().message;
}

// --- enums ------------------------------------------------------------------------

TEST(IsolationModeTest, RoundTripsAndRejectsUnknown) {
  for (IsolationMode m : {IsolationMode::kShared, IsolationMode::kDedicated, IsolationMode::kIsolated}) {
    EXPECT_EQ(ParseIsolationMode(ToString(m)), m);
  }
  EXPECT_EQ(ToString(IsolationMode::kDedicated), "dedicated");
  EXPECT_FALSE(ParseIsolationMode("Shared").has_value());
  EXPECT_FALSE(ParseIsolationMode("").has_value());
  EXPECT_FALSE(ParseIsolationMode("none").has_value());
}

TEST(IsolationModeTest, OnlyStrictTighteningCounts) {
  EXPECT_TRUE(IsTightening(IsolationMode::kShared, IsolationMode::kDedicated));
  EXPECT_TRUE(IsTightening(IsolationMode::kShared, IsolationMode::kIsolated));
  EXPECT_TRUE(IsTightening(IsolationMode::kDedicated, IsolationMode::kIsolated));
  EXPECT_FALSE(IsTightening(IsolationMode::kIsolated, IsolationMode::kShared));
  EXPECT_FALSE(IsTightening(IsolationMode::kDedicated, IsolationMode::kShared));
  EXPECT_FALSE(IsTightening(IsolationMode::kDedicated, IsolationMode::kDedicated));
}

TEST(StoreStateTest, RoundTripsSnakeCase) {
  EXPECT_EQ(ToString(StoreState::kProvisionFailed), "provision_failed");
  EXPECT_EQ(ToString(StoreState::kDecommissionFailed), "decommission_failed");
  for (StoreState s :
       {StoreState::kRegistered, StoreState::kProvisioning, StoreState::kProvisionFailed, StoreState::kActive,
        StoreState::kDecommissioning, StoreState::kDecommissionFailed, StoreState::kDecommissioned}) {
    EXPECT_EQ(ParseStoreState(ToString(s)), s);
  }
  EXPECT_FALSE(ParseStoreState("Active").has_value());
  EXPECT_FALSE(ParseStoreState("deleted").has_value());
}

// --- id ---------------------------------------------------------------------------

TEST(StoreIdTest, AcceptsDnsLabels) {
  for (const char* id : {"a", "7", "shop", "shop-eu-01", "0shop", "a-b-c", "a--b", "123"}) {
    EXPECT_TRUE(ValidateStoreId(id).ok()) << id;
  }
}

TEST(StoreIdTest, LengthBoundaryIs63) {
  EXPECT_TRUE(ValidateStoreId(std::string(63, 'a')).ok());
  ExpectInvalid(ValidateStoreId(std::string(64, 'a')), "id", "at most 63 characters");
}

TEST(StoreIdTest, RejectsEmpty) { ExpectInvalid(ValidateStoreId(""), "id", "id must not be empty"); }

TEST(StoreIdTest, RejectsUppercase) { ExpectInvalid(ValidateStoreId("Shop"), "id", "id must be lowercase"); }

TEST(StoreIdTest, RejectsLeadingAndTrailingDash) {
  ExpectInvalid(ValidateStoreId("-shop"), "id", "id must start with a letter or digit");
  ExpectInvalid(ValidateStoreId("shop-"), "id", "id must end with a letter or digit");
  ExpectInvalid(ValidateStoreId("-"), "id", "must start");
}

TEST(StoreIdTest, RejectsOtherCharacters) {
  for (const char* id : {"shop_eu", "shop.eu", "shop eu", "shop/eu", "shop:1"}) {
    ExpectInvalid(ValidateStoreId(id), "id", "only lowercase letters a-z, digits 0-9 and '-'");
  }
}

TEST(StoreIdTest, RejectsUnicodeWithoutEchoingRawBytes) {
  Status s = ValidateStoreId("caf\xC3\xA9");  // "café"
  ExpectInvalid(s, "id", "byte 0xC3 at position 3");
  EXPECT_EQ(s.error().message.find('\xC3'), std::string::npos);
}

// --- name -------------------------------------------------------------------------

TEST(StoreNameTest, AcceptsOrdinaryAndUnicodeNames) {
  for (const char* name : {"EU flagship", "x", "Boutique Café Zürich", "東京ストア", "Shop 🛒 (beta)"}) {
    EXPECT_TRUE(ValidateStoreName(name).ok()) << name;
  }
}

TEST(StoreNameTest, LengthBoundaryIs200Bytes) {
  EXPECT_TRUE(ValidateStoreName(std::string(200, 'n')).ok());
  ExpectInvalid(ValidateStoreName(std::string(201, 'n')), "name", "at most 200 bytes");
  // 100 two-byte characters is 200 bytes and fine; 101 is not.
  std::string two_byte;
  for (int i = 0; i < 100; ++i) two_byte += "\xC3\xA9";
  EXPECT_TRUE(ValidateStoreName(two_byte).ok());
  ExpectInvalid(ValidateStoreName(two_byte + "\xC3\xA9"), "name", "at most 200 bytes");
}

TEST(StoreNameTest, RejectsEmptyAndBlank) {
  ExpectInvalid(ValidateStoreName(""), "name", "must not be empty");
  ExpectInvalid(ValidateStoreName("   "), "name", "must not be blank");
  ExpectInvalid(ValidateStoreName("\xC2\xA0\xE3\x80\x80"), "name", "must not be blank");  // NBSP, ideographic
}

TEST(StoreNameTest, RejectsControlCharacters) {
  for (std::string name : {std::string("line\nbreak"), std::string("tab\there"), std::string("nul\0x", 5),
                           std::string("del\x7f"), std::string("c1\xC2\x85")}) {
    ExpectInvalid(ValidateStoreName(name), "name", "control characters");
  }
}

TEST(StoreNameTest, RejectsInvalidUtf8) {
  for (const char* name : {"bad \xFF", "trunc \xC3", "overlong \xC0\xAF", "surrogate \xED\xA0\x80",
                           "too big \xF4\x90\x80\x80", "stray \x80"}) {
    ExpectInvalid(ValidateStoreName(name), "name", "valid UTF-8");
  }
}

// --- environment ------------------------------------------------------------------

TEST(EnvironmentTest, DefaultSetAndMessageListsAllowed) {
  const EnvironmentSet envs;
  EXPECT_TRUE(ValidateEnvironment("production", envs).ok());
  EXPECT_TRUE(ValidateEnvironment("staging", envs).ok());
  EXPECT_TRUE(ValidateEnvironment("development", envs).ok());
  ExpectInvalid(ValidateEnvironment("prod", envs), "environment",
                "environment must be one of: development, production, staging");
  ExpectInvalid(ValidateEnvironment("Production", envs), "environment", "must be one of");
  ExpectInvalid(ValidateEnvironment("", envs), "environment", "must not be empty");
}

TEST(EnvironmentTest, ConfiguredSetReplacesDefault) {
  EnvironmentSet envs;
  envs.names = {"live", "qa"};
  EXPECT_TRUE(ValidateEnvironment("qa", envs).ok());
  ExpectInvalid(ValidateEnvironment("production", envs), "environment", "must be one of: live, qa");
}

// --- NewStore ---------------------------------------------------------------------

TEST(NewStoreTest, BuildsRegisteredStoreAtVersionOne) {
  Result<Store> store = NewStore(ValidRegistration(), EnvironmentSet{}, kNow);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ(store->id, "shop-eu-01");
  EXPECT_EQ(store->name, "EU flagship");
  EXPECT_EQ(store->environment, "production");
  EXPECT_EQ(store->isolation_mode, IsolationMode::kDedicated);
  EXPECT_EQ(store->labels.at("region"), "eu-west-1");
  EXPECT_EQ(store->state, StoreState::kRegistered);
  EXPECT_EQ(store->version, 1);
  EXPECT_EQ(store->created_at_ms, kNow);
  EXPECT_EQ(store->updated_at_ms, kNow);
  EXPECT_FALSE(store->desired_release.has_value());
  EXPECT_FALSE(store->current_release.has_value());
  EXPECT_FALSE(store->last_known_good_release.has_value());
}

TEST(NewStoreTest, EmptyNameDefaultsToId) {
  StoreRegistration req = ValidRegistration();
  req.name.clear();
  Result<Store> store = NewStore(req, EnvironmentSet{}, kNow);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(store->name, "shop-eu-01");
}

TEST(NewStoreTest, EachFieldIsValidated) {
  StoreRegistration req = ValidRegistration();
  req.id = "Bad_Id";
  Result<Store> r = NewStore(req, EnvironmentSet{}, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().field, "id");

  req = ValidRegistration();
  req.name = "  ";
  r = NewStore(req, EnvironmentSet{}, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().field, "name");

  req = ValidRegistration();
  req.environment = "qa";
  r = NewStore(req, EnvironmentSet{}, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().field, "environment");

  req = ValidRegistration();
  req.isolation_mode = "strict";
  r = NewStore(req, EnvironmentSet{}, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().field, "isolation_mode");
  EXPECT_EQ(r.error().message, "isolation_mode must be one of: shared, dedicated, isolated");

  req = ValidRegistration();
  req.isolation_mode.clear();
  r = NewStore(req, EnvironmentSet{}, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().field, "isolation_mode");

  req = ValidRegistration();
  req.labels["db_password"] = "x";
  r = NewStore(req, EnvironmentSet{}, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().field, "labels.db_password");
}

// --- patches ----------------------------------------------------------------------

TEST(PatchTest, ApplyChangesOnlyPresentFieldsAndBumpsVersion) {
  Store current = *NewStore(ValidRegistration(), EnvironmentSet{}, kNow);
  current.version = 7;
  current.state = StoreState::kActive;

  StorePatch patch;
  patch.name = "EU flagship (renamed)";
  ASSERT_TRUE(ValidatePatch(patch).ok());
  Store next = ApplyPatch(current, patch, kNow + 5);
  EXPECT_EQ(next.name, "EU flagship (renamed)");
  EXPECT_EQ(next.labels, current.labels);
  EXPECT_EQ(next.version, 8);
  EXPECT_EQ(next.updated_at_ms, kNow + 5);
  EXPECT_EQ(next.created_at_ms, kNow);
  EXPECT_EQ(next.state, StoreState::kActive);
  EXPECT_EQ(next.environment, current.environment);
  EXPECT_EQ(next.isolation_mode, current.isolation_mode);
}

TEST(PatchTest, LabelsReplaceTheWholeSet) {
  const Store current = *NewStore(ValidRegistration(), EnvironmentSet{}, kNow);
  StorePatch patch;
  patch.labels = Labels{{"tier", "gold"}};
  ASSERT_TRUE(ValidatePatch(patch).ok());
  Store next = ApplyPatch(current, patch, kNow + 1);
  EXPECT_EQ(next.labels, (Labels{{"tier", "gold"}}));
  EXPECT_EQ(next.name, current.name);
  EXPECT_EQ(next.version, 2);
}

TEST(PatchTest, EmptyPatchStillBumpsVersion) {
  const Store current = *NewStore(ValidRegistration(), EnvironmentSet{}, kNow);
  ASSERT_TRUE(ValidatePatch(StorePatch{}).ok());
  Store next = ApplyPatch(current, StorePatch{}, kNow + 1);
  EXPECT_EQ(next.version, 2);
  EXPECT_EQ(next.updated_at_ms, kNow + 1);
}

TEST(PatchTest, ValidationRejectsBadNameAndLabels) {
  StorePatch patch;
  patch.name = "";
  ExpectInvalid(ValidatePatch(patch), "name", "must not be empty");

  patch = StorePatch{};
  patch.labels = Labels{{"api_key", "abc"}};
  ExpectInvalid(ValidatePatch(patch), "labels.api_key", "looks like it names a secret");

  patch = StorePatch{};
  patch.labels = Labels{{"-bad", "x"}};
  ExpectInvalid(ValidatePatch(patch), "labels.-bad", "start and end with a letter or digit");
}

}  // namespace
}  // namespace storeplane::core

namespace storeplane::core {
namespace {

TEST(TimeFormat, FormatsUtcWithMilliseconds) {
  EXPECT_EQ(FormatRfc3339Millis(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(1733340000123), "2024-12-04T19:20:00.123Z");
  EXPECT_EQ(FormatRfc3339Millis(1733340000007), "2024-12-04T19:20:00.007Z");
}

}  // namespace
}  // namespace storeplane::core
