// `storeplane audit verify --file`: an NDJSON export built here with the core's sealing and
// signing verifies; edited, deleted, reordered, truncated or re-sealed lines fail with exit 8
// and one line naming the first bad record.
#include <boost/json.hpp>

#include <gtest/gtest.h>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "audit_fixture.h"
#include "cli_test_support.h"

namespace storeplane {
namespace {

using testing::AuditFixture;
using testing::CliRun;
using testing::OneErrorLine;
using testing::RunCli;
using testing::TempDir;
namespace json = boost::json;

class AuditVerifyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fixture_ = AuditFixture::Build(10, 4);  // checkpoints at records 4 and 8
    key_path_ = dir_.path() + "/audit.pub.pem";
    std::ofstream(key_path_) << fixture_.key.public_pem;
  }

  // Verifies the given lines as an export file.
  CliRun Verify(const std::vector<std::string>& lines, std::vector<std::string> extra = {}) {
    std::string path = dir_.path() + "/export-" + std::to_string(++files_) + ".ndjson";
    std::ofstream(path) << AuditFixture::Join(lines);
    std::vector<std::string> args = {"audit", "verify", "--file", path, "--public-key", key_path_};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCli(args);
  }

  // The export with record `seq`'s JSON changed by `edit` (and left as is otherwise).
  std::vector<std::string> Edited(std::int64_t seq, const std::function<void(json::object&)>& edit) {
    auto lines = fixture_.NdjsonLines();
    json::object record = json::parse(lines[static_cast<size_t>(seq - 1)]).as_object();
    edit(record);
    lines[static_cast<size_t>(seq - 1)] = json::serialize(record);
    return lines;
  }

  static void ExpectFailureAt(const CliRun& run, std::int64_t seq) {
    EXPECT_EQ(run.exit_code, 8) << run;
    EXPECT_TRUE(OneErrorLine(run));
    EXPECT_EQ(run.err.rfind("storeplane: audit verification failed at record " + std::to_string(seq) + ": ", 0), 0u)
        << run;
    EXPECT_EQ(run.out, "") << run;
  }

  TempDir dir_;
  AuditFixture fixture_;
  std::string key_path_;
  int files_ = 0;
};

TEST_F(AuditVerifyFileTest, AnIntactExportVerifies) {
  CliRun run = Verify(fixture_.NdjsonLines());
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_EQ(run.out, "audit chain OK: 10 records, 2 checkpoints verified\n");
  EXPECT_EQ(run.err, "");

  CliRun as_json = Verify(fixture_.NdjsonLines(), {"-o", "json"});
  EXPECT_EQ(as_json.exit_code, 0) << as_json;
  json::value report = json::parse(as_json.out);
  EXPECT_EQ(report.at("ok"), true);
  EXPECT_EQ(report.at("records"), 10);
  EXPECT_EQ(report.at("checkpoints_verified"), 2);
}

TEST_F(AuditVerifyFileTest, AnEditedFieldIsNamed) {
  ExpectFailureAt(Verify(Edited(5, [](json::object& r) { r["principal"] = "mallory"; })), 5);
  ExpectFailureAt(Verify(Edited(7, [](json::object& r) { r["decision"] = "deny"; })), 7);
  ExpectFailureAt(Verify(Edited(2, [](json::object& r) { r["params"].as_object()["environment"] = "production"; })), 2);
  ExpectFailureAt(Verify(Edited(9,
                                [](json::object& r) {
                                  std::int64_t later = r["time_ms"].as_int64() + 1;
                                  r["time_ms"] = later;
                                  r["time"] = core::FormatRfc3339Millis(later);
                                })),
                  9);
  // "time" is outside the hash, but must agree with time_ms, which is inside.
  ExpectFailureAt(Verify(Edited(3, [](json::object& r) { r["time"] = "2020-01-01T00:00:00.000Z"; })), 3);
  ExpectFailureAt(Verify(Edited(6, [](json::object& r) { r.erase("hash"); })), 6);
}

TEST_F(AuditVerifyFileTest, ADeletedRecordIsNamed) {
  auto lines = fixture_.NdjsonLines();
  lines.erase(lines.begin() + 4);  // record 5
  CliRun run = Verify(lines);
  ExpectFailureAt(run, 6);
  EXPECT_NE(run.err.find("record 5 is missing"), std::string::npos) << run;

  auto first_gone = fixture_.NdjsonLines();
  first_gone.erase(first_gone.begin());
  ExpectFailureAt(Verify(first_gone), 2);
}

TEST_F(AuditVerifyFileTest, ReorderedRecordsAreNamed) {
  auto lines = fixture_.NdjsonLines();
  std::swap(lines[5], lines[6]);  // records 6 and 7
  ExpectFailureAt(Verify(lines), 7);
}

TEST_F(AuditVerifyFileTest, TruncationBeforeASignedCheckpointIsNamed) {
  auto lines = fixture_.NdjsonLines();
  lines.erase(lines.begin() + 7, lines.begin() + 10);  // records 8 to 10 gone, checkpoints kept
  CliRun run = Verify(lines);
  ExpectFailureAt(run, 8);
  EXPECT_NE(run.err.find("truncated"), std::string::npos) << run;
}

TEST_F(AuditVerifyFileTest, ARewrittenAndResealedChainFailsAtTheCheckpoint) {
  // Record 3 edited and every hash from there on recomputed: the chain is consistent, but
  // the signed checkpoint at record 4 names the old hash.
  std::vector<core::AuditRecord> records = fixture_.records;
  records[2].entry.principal = "mallory";
  std::string prev = records[1].hash;
  for (size_t i = 2; i < records.size(); ++i) {
    records[i] = core::Seal(records[i].seq, prev, records[i].entry);
    prev = records[i].hash;
  }
  std::vector<std::string> lines;
  for (const auto& record : records) {
    lines.push_back(json::serialize(AuditFixture::WithKind("record", AuditFixture::RecordJson(record))));
  }
  for (const auto& checkpoint : fixture_.checkpoints) {
    lines.push_back(json::serialize(AuditFixture::WithKind("checkpoint", AuditFixture::CheckpointJson(checkpoint))));
  }
  ExpectFailureAt(Verify(lines), 4);
}

TEST_F(AuditVerifyFileTest, AnUnreadableLineIsNamedByTheRecordExpectedThere) {
  auto lines = fixture_.NdjsonLines();
  lines[3] = "{not json";
  CliRun run = Verify(lines);
  ExpectFailureAt(run, 4);
  EXPECT_NE(run.err.find("line 4"), std::string::npos) << run;

  auto unknown = fixture_.NdjsonLines();
  unknown[1] = R"({"kind":"gossip","seq":2})";
  ExpectFailureAt(Verify(unknown), 2);
}

TEST_F(AuditVerifyFileTest, AnEarlierBreakWinsOverALaterUnreadableLine) {
  auto lines = Edited(2, [](json::object& r) { r["outcome"] = "error:internal"; });
  lines[6] = "garbage";
  ExpectFailureAt(Verify(lines), 2);
}

TEST_F(AuditVerifyFileTest, AnotherKeyOrAForgedCheckpointFails) {
  AuditFixture other = AuditFixture::Build(1, 0);
  std::string other_key = dir_.path() + "/other.pub.pem";
  std::ofstream(other_key) << other.key.public_pem;
  std::string path = dir_.path() + "/good.ndjson";
  std::ofstream(path) << AuditFixture::Join(fixture_.NdjsonLines());
  CliRun wrong_key = RunCli({"audit", "verify", "--file", path, "--public-key", other_key});
  EXPECT_EQ(wrong_key.exit_code, 8) << wrong_key;
  EXPECT_TRUE(OneErrorLine(wrong_key));
  EXPECT_NE(wrong_key.err.find("at record 4"), std::string::npos) << wrong_key;

  auto lines = fixture_.NdjsonLines();
  json::object checkpoint = json::parse(lines.back()).as_object();  // the one at record 8
  std::string signature(checkpoint["signature"].as_string());
  signature[0] = signature[0] == 'a' ? 'b' : 'a';
  checkpoint["signature"] = signature;
  lines.back() = json::serialize(checkpoint);
  ExpectFailureAt(Verify(lines), 8);
}

TEST_F(AuditVerifyFileTest, AnEmptyExportDoesNotVerify) {
  CliRun run = Verify({});
  EXPECT_EQ(run.exit_code, 8) << run;
  EXPECT_TRUE(OneErrorLine(run));
  EXPECT_NE(run.err.find("no audit records"), std::string::npos) << run;
}

TEST_F(AuditVerifyFileTest, RecordsWithoutCheckpointsVerifyWithANote) {
  AuditFixture unsigned_trail = AuditFixture::Build(3, 0);
  unsigned_trail.key = fixture_.key;
  CliRun run = Verify(unsigned_trail.NdjsonLines());
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_EQ(run.out, "audit chain OK: 3 records, 0 checkpoints verified\n");
  EXPECT_NE(run.err.find("no signed checkpoint"), std::string::npos) << run;
}

TEST_F(AuditVerifyFileTest, LocalProblemsAreUsageErrors) {
  std::string path = dir_.path() + "/good.ndjson";
  std::ofstream(path) << AuditFixture::Join(fixture_.NdjsonLines());
  const std::vector<std::vector<std::string>> cases = {
      {"audit", "verify", "--file", path},  // offline needs a key
      {"audit", "verify", "--file", dir_.path() + "/absent.ndjson", "--public-key", key_path_},
      {"audit", "verify", "--file", path, "--public-key", dir_.path() + "/absent.pem"},
  };
  for (const auto& args : cases) {
    CliRun run = RunCli(args);
    EXPECT_EQ(run.exit_code, 2) << run;
    EXPECT_TRUE(OneErrorLine(run));
  }
}

}  // namespace
}  // namespace storeplane
