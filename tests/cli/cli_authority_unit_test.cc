// Unit tests of the pure parts of the authority and audit commands: durations, the audit
// record reader and verifier, the failure line, query strings and rendering.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>

#include "audit_fixture.h"
#include "cli/audit_commands.h"
#include "cli/authz_commands.h"
#include "cli/changes_commands.h"
#include "cli/output.h"
#include "cli/tokens_commands.h"
#include "support/server_process.h"

namespace storeplane::cli {
namespace {

namespace json = boost::json;
using storeplane::testing::AuditFixture;

TEST(CliDuration, ParsesUnitsAndSums) {
  EXPECT_EQ(ParseDuration("45s").value(), 45);
  EXPECT_EQ(ParseDuration("90m").value(), 5400);
  EXPECT_EQ(ParseDuration("12h").value(), 43200);
  EXPECT_EQ(ParseDuration("30d").value(), 2592000);
  EXPECT_EQ(ParseDuration("2w").value(), 1209600);
  EXPECT_EQ(ParseDuration("1d12h").value(), 129600);
  for (const char* bad : {"", "30", "d", "0d", "0h0m", "3y", "1.5h", "-1h", "1 h", "h1", "99999999999999999999d"}) {
    auto parsed = ParseDuration(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument) << bad;
    }
  }
}

TEST(CliAuditVerify, ReadsAnExportAndNamesTheFirstBadRecord) {
  AuditFixture fixture = AuditFixture::Build(5, 2);
  std::string good = AuditFixture::Join(fixture.NdjsonLines());
  core::ChainReport ok = VerifyAuditExport(good, fixture.key.public_pem);
  EXPECT_TRUE(ok.ok) << ok.problem;
  EXPECT_EQ(ok.records, 5);
  EXPECT_EQ(ok.checkpoints_verified, 2);
  EXPECT_EQ(VerifySuccessLine(ok), "audit chain OK: 5 records, 2 checkpoints verified");

  // CRLF line ends and blank lines are tolerated.
  std::string crlf;
  for (const auto& line : fixture.NdjsonLines()) crlf += line + "\r\n\n";
  EXPECT_TRUE(VerifyAuditExport(crlf, fixture.key.public_pem).ok);

  auto lines = fixture.NdjsonLines();
  json::object third = json::parse(lines[2]).as_object();
  third["rule"] = "admin/allow/1";
  lines[2] = json::serialize(third);
  core::ChainReport bad = VerifyAuditExport(AuditFixture::Join(lines), fixture.key.public_pem);
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.first_bad_seq, 3);
  EXPECT_EQ(VerifyFailureLine(bad).rfind("storeplane: audit verification failed at record 3: hash", 0), 0u)
      << VerifyFailureLine(bad);

  core::ChainReport empty = VerifyAuditExport("\n", fixture.key.public_pem);
  EXPECT_FALSE(empty.ok);
  EXPECT_EQ(VerifyFailureLine(empty), "storeplane: audit verification failed: no audit records to verify");
}

TEST(CliAuditVerify, RecordReaderNamesTheField) {
  AuditFixture fixture = AuditFixture::Build(1, 0);
  json::object record = AuditFixture::RecordJson(fixture.records[0]);
  auto parsed = AuditRecordFromJson(record);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(core::RecomputeHash(parsed.value()), fixture.records[0].hash);

  json::object no_seq = record;
  no_seq.erase("seq");
  EXPECT_EQ(AuditRecordFromJson(no_seq).error().field, "seq");
  json::object text_seq = record;
  text_seq["seq"] = "1";
  EXPECT_EQ(AuditRecordFromJson(text_seq).error().field, "seq");
  json::object bad_params = record;
  bad_params["params"] = json::object{{"n", 1}};
  EXPECT_EQ(AuditRecordFromJson(bad_params).error().field, "params");
  EXPECT_FALSE(AuditRecordFromJson(json::value("x")).ok());

  json::object checkpoint{{"seq", 1}, {"hash", "ab"}, {"time_ms", 5}, {"key_id", "k"}, {"signature", "s"}};
  EXPECT_TRUE(AuditCheckpointFromJson(checkpoint).ok());
  checkpoint.erase("signature");
  EXPECT_EQ(AuditCheckpointFromJson(checkpoint).error().field, "signature");
}

TEST(CliAuditList, EncodesTheFilters) {
  EXPECT_EQ(AuditListPath({}), "/v1/audit");
  AuditFilters filters;
  filters.after = "17";
  filters.limit = 50;
  filters.principal = "alice";
  filters.action = "store.register";
  filters.target = "store/acme";
  EXPECT_EQ(AuditListPath(filters),
            "/v1/audit?after=17&limit=50&principal=alice&action=store.register&target=store%2Facme");
}

TEST(CliAtomicWrite, ReplacesTheFileAndLeavesNoTemporary) {
  storeplane::testing::TempDir dir;
  std::string path = dir.path() + "/out.ndjson";
  std::ofstream(path) << "old";
  ASSERT_TRUE(WriteFileAtomically(path, "new\n").ok());
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "new\n");
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) files += entry.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 1);
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::others_read,
            std::filesystem::perms::none);

  Status missing_dir = WriteFileAtomically(dir.path() + "/none/out", "x");
  ASSERT_FALSE(missing_dir.ok());
  EXPECT_NE(missing_dir.error().message.find(dir.path() + "/none"), std::string::npos);
}

TEST(CliRender, ExplainAndChanges) {
  std::string allowed =
      ExplainText(json::parse(R"({"allowed":true,"rule":"operator/allow/1","reason":"role operator",)"
                              R"("approval":{"rule":"approval/1","approvals":2,"approver_role":"approver"}})")
                      .as_object());
  EXPECT_EQ(allowed,
            "decision:  allowed\n"
            "rule:      operator/allow/1\n"
            "reason:    role operator\n"
            "approval:  2 approvals by role approver (rule approval/1)\n");
  std::string denied =
      ExplainText(json::parse(R"({"allowed":false,"rule":"default/deny","reason":"no rule"})").as_object());
  EXPECT_EQ(denied, "decision:  denied\nrule:      default/deny\nreason:    no rule\n");

  std::string table = ChangesTable(json::parse(R"([{"id":"chg_1","action":"store.register","target":"store/a",)"
                                               R"("environment":"production","requester":"alice",)"
                                               R"("status":"pending","approvals_needed":2,"approvers":["bob"]}])")
                                       .as_array());
  EXPECT_NE(table.find("1/2"), std::string::npos) << table;
  EXPECT_NE(table.find("<none>"), std::string::npos) << table;  // no expires_at
}

}  // namespace
}  // namespace storeplane::cli
