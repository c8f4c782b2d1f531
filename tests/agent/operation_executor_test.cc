// Every catalog operation against the fake Magento (tests/support/fake_magento): the exact
// argv it runs (from the fake php's argv.log, whose parent must be this process and not a
// shell), the closed result parsed from the output, the failure codes, the allow-list, the
// journal's never-twice rule across a restart, and that no PII canary leaves in a report
// or a log line.
#include "agent/operation_executor.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "agent/agent_log.h"
#include "agent_test_support.h"

namespace storeplane::agent {
namespace {

using core::CacheType;
using core::OperationName;
using std::chrono::milliseconds;
using testing::CopyFakeMagento;
using testing::OwnComm;
using testing::ReadFile;
using testing::SplitLines;
using testing::TempDir;

constexpr char kUnitSeparator = '\x1f';

protocol::OperationEnvelope Envelope(std::string id, OperationName name, core::OperationParams params = {},
                                     int timeout_s = 60) {
  protocol::OperationEnvelope envelope;
  envelope.id = std::move(id);
  envelope.name = name;
  envelope.params = std::move(params);
  envelope.timeout_s = timeout_s;
  envelope.expires_at_ms = 0;
  return envelope;
}

void ExpectNoCanary(const std::string& text) {
  for (const char* canary :
       {"canary", "CANARY", "4111", "example.com", "ORDER-", "password", "Title", "Product Price"}) {
    EXPECT_EQ(text.find(canary), std::string::npos) << "'" << canary << "' leaked into: " << text;
  }
}

class OperationExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    magento_ = CopyFakeMagento(dir_);
    config_ = testing::FakeStoreConfig(magento_, dir_ / "state");
    std::filesystem::create_directories(config_.state_dir);
    SetLogSink([this](std::string_view line) {
      std::lock_guard lock(log_mutex_);
      logs_ += std::string(line) + "\n";
    });
  }
  void TearDown() override {
    SetLogSink({});
    ExpectNoCanary(logs_);
  }

  std::string ArgvLine(std::vector<std::string> args) const {
    std::string line = "ppid_comm=" + OwnComm() + "|argv=bin/magento";
    for (const auto& arg : args) line += kUnitSeparator + arg;
    return line;
  }
  std::vector<std::string> ArgvLog() const { return SplitLines(ReadFile(magento_ + "/var/argv.log")); }
  void Knob(const std::string& name) const { testing::WriteFile(magento_ + "/var/" + name, ""); }

  // Runs `envelope` with a fresh journal-less executor and returns the decoded report.
  protocol::OperationReport Run(const protocol::OperationEnvelope& envelope) {
    ProcessRunner runner;
    OperationExecutor executor(config_, runner, nullptr);
    const auto body = executor.Handle(envelope);
    EXPECT_TRUE(body.has_value());
    if (!body) return {};
    ExpectNoCanary(*body);
    auto report = protocol::DecodeOperationReport(envelope.name, *body);
    EXPECT_TRUE(report.ok()) << *body;
    return report.ok() ? *report : protocol::OperationReport{};
  }

  TempDir dir_;
  std::string magento_;
  AgentConfig config_;
  std::mutex log_mutex_;
  std::string logs_;
};

TEST_F(OperationExecutorTest, ArgvOfEveryOperation) {
  const std::string php = config_.php_binary;
  EXPECT_TRUE(ArgvFor(config_, OperationName::kHealthProbe, {}).empty());
  EXPECT_EQ(ArgvFor(config_, OperationName::kMaintenanceEnable, {}),
            (std::vector<std::string>{php, "bin/magento", "maintenance:enable"}));
  EXPECT_EQ(ArgvFor(config_, OperationName::kMaintenanceDisable, {}),
            (std::vector<std::string>{php, "bin/magento", "maintenance:disable"}));
  EXPECT_EQ(ArgvFor(config_, OperationName::kCacheFlush, {}),
            (std::vector<std::string>{php, "bin/magento", "cache:flush"}));
  EXPECT_EQ(ArgvFor(config_, OperationName::kCacheFlush, {{CacheType::kFullPage, CacheType::kConfig}}),
            (std::vector<std::string>{php, "bin/magento", "cache:flush", "full_page", "config"}));
  EXPECT_EQ(ArgvFor(config_, OperationName::kIndexerStatus, {}),
            (std::vector<std::string>{php, "bin/magento", "indexer:status"}));
  EXPECT_EQ(ArgvFor(config_, OperationName::kDbStatus, {}),
            (std::vector<std::string>{php, "bin/magento", "setup:db:status"}));
  EXPECT_EQ(ArgvFor(config_, OperationName::kReleaseReport, {}),
            (std::vector<std::string>{php, "bin/magento", "--version"}));
}

TEST_F(OperationExecutorTest, EveryOperationAgainstTheFakeMagento) {
  const auto enable = Run(Envelope("op_01", OperationName::kMaintenanceEnable));
  ASSERT_TRUE(enable.succeeded) << enable.code;
  EXPECT_EQ(enable.result.maintenance, true);
  EXPECT_TRUE(std::filesystem::exists(magento_ + "/var/.maintenance.flag"));

  const auto disable = Run(Envelope("op_02", OperationName::kMaintenanceDisable));
  ASSERT_TRUE(disable.succeeded) << disable.code;
  EXPECT_EQ(disable.result.maintenance, false);
  EXPECT_FALSE(std::filesystem::exists(magento_ + "/var/.maintenance.flag"));

  const auto flush_all = Run(Envelope("op_03", OperationName::kCacheFlush));
  ASSERT_TRUE(flush_all.succeeded) << flush_all.code;
  EXPECT_EQ(flush_all.result.flushed, core::AllCacheTypes());

  const auto flush_some =
      Run(Envelope("op_04", OperationName::kCacheFlush, {{CacheType::kConfig, CacheType::kFullPage}}));
  ASSERT_TRUE(flush_some.succeeded) << flush_some.code;
  EXPECT_EQ(flush_some.result.flushed, (std::vector<CacheType>{CacheType::kConfig, CacheType::kFullPage}));

  const auto indexers = Run(Envelope("op_05", OperationName::kIndexerStatus));
  ASSERT_TRUE(indexers.succeeded) << indexers.code;
  ASSERT_EQ(indexers.result.indexers.size(), 12U);
  EXPECT_EQ(indexers.result.indexers[0], (core::IndexerState{"catalog_category_product", core::IndexerStatus::kReady}));
  EXPECT_EQ(indexers.result.indexers[2],
            (core::IndexerState{"catalogrule_rule", core::IndexerStatus::kReindexRequired}));
  EXPECT_EQ(indexers.result.indexers[4],
            (core::IndexerState{"cataloginventory_stock", core::IndexerStatus::kProcessing}));
  EXPECT_EQ(indexers.result.indexers[8],
            (core::IndexerState{"catalogsearch_fulltext", core::IndexerStatus::kSuspended}));
  EXPECT_EQ(indexers.result.indexers[9], (core::IndexerState{"customer_grid", core::IndexerStatus::kReady}));

  const auto db = Run(Envelope("op_06", OperationName::kDbStatus));
  ASSERT_TRUE(db.succeeded) << db.code;
  EXPECT_EQ(db.result.schema_up_to_date, true);
  Knob("fake-db-outdated");
  const auto outdated = Run(Envelope("op_07", OperationName::kDbStatus));
  ASSERT_TRUE(outdated.succeeded) << outdated.code;
  EXPECT_EQ(outdated.result.schema_up_to_date, false);

  const auto release = Run(Envelope("op_08", OperationName::kReleaseReport));
  ASSERT_TRUE(release.succeeded) << release.code;
  EXPECT_EQ(release.result.magento_version, "2.4.6-p3");
  EXPECT_EQ(release.result.release, "r2026.12.04-1");

  const auto probe = Run(Envelope("op_09", OperationName::kHealthProbe));
  ASSERT_TRUE(probe.succeeded) << probe.code;
  ASSERT_EQ(probe.result.checks.size(), 6U);
  EXPECT_EQ(probe.result.checks[0],
            (core::CheckResult{core::CheckName::kStorefront, core::CheckStatus::kPass, "disabled"}));
  EXPECT_EQ(probe.result.checks[4],
            (core::CheckResult{core::CheckName::kRelease, core::CheckStatus::kPass, "release_present"}));

  // Exactly one invocation per command operation, argv as the catalog says; health.probe ran
  // nothing. The parent of the fake php is this test process itself: no shell in between.
  const auto log = ArgvLog();
  EXPECT_EQ(log, (std::vector<std::string>{
                     ArgvLine({"maintenance:enable"}),
                     ArgvLine({"maintenance:disable"}),
                     ArgvLine({"cache:flush"}),
                     ArgvLine({"cache:flush", "config", "full_page"}),
                     ArgvLine({"indexer:status"}),
                     ArgvLine({"setup:db:status"}),
                     ArgvLine({"setup:db:status"}),
                     ArgvLine({"--version"}),
                 }));
  for (const auto& line : log) {
    EXPECT_EQ(line.find("ppid_comm=sh|"), std::string::npos);
    EXPECT_EQ(line.find("ppid_comm=dash|"), std::string::npos);
    EXPECT_EQ(line.find("ppid_comm=bash|"), std::string::npos);
  }
  EXPECT_NE(OwnComm(), "");
}

TEST_F(OperationExecutorTest, ReleaseIsAbsentWithoutAValidMarker) {
  std::filesystem::remove(magento_ + "/.storeplane-release");
  const auto missing = Run(Envelope("op_10", OperationName::kReleaseReport));
  ASSERT_TRUE(missing.succeeded) << missing.code;
  EXPECT_FALSE(missing.result.release.has_value());
  EXPECT_EQ(missing.result.magento_version, "2.4.6-p3");

  testing::WriteFile(magento_ + "/.storeplane-release", "canary.customer@example.com\n");
  const auto invalid = Run(Envelope("op_11", OperationName::kReleaseReport));
  ASSERT_TRUE(invalid.succeeded) << invalid.code;
  EXPECT_FALSE(invalid.result.release.has_value());
}

TEST_F(OperationExecutorTest, OperationsOutsideTheAllowListAreRefusedWithoutRunning) {
  config_.allowed_operations = {OperationName::kHealthProbe};
  for (const auto name : core::AllOperationNames()) {
    if (name == OperationName::kHealthProbe) continue;
    const auto report = Run(Envelope("op_20", name));
    EXPECT_FALSE(report.succeeded);
    EXPECT_EQ(report.code, "refused_not_allowed") << core::ToString(name);
  }
  EXPECT_FALSE(std::filesystem::exists(magento_ + "/var/argv.log"));
  EXPECT_FALSE(std::filesystem::exists(magento_ + "/var/.maintenance.flag"));

  config_.allowed_operations = {};
  const auto probe = Run(Envelope("op_21", OperationName::kHealthProbe));
  EXPECT_EQ(probe.code, "refused_not_allowed");
}

TEST_F(OperationExecutorTest, NonZeroExitIsReportedWithoutItsOutput) {
  Knob("fake-fail");  // prints a canary e-mail address, exits 1
  for (const auto name : {OperationName::kIndexerStatus, OperationName::kCacheFlush, OperationName::kDbStatus,
                          OperationName::kReleaseReport, OperationName::kMaintenanceEnable}) {
    const auto report = Run(Envelope("op_30", name));
    EXPECT_FALSE(report.succeeded);
    EXPECT_EQ(report.code, "exit_nonzero") << core::ToString(name);
  }
}

TEST_F(OperationExecutorTest, TimeoutKillsAHangingCommand) {
  Knob("fake-hang");
  const auto start = std::chrono::steady_clock::now();
  const auto report = Run(Envelope("op_31", OperationName::kIndexerStatus, {}, 1));
  EXPECT_FALSE(report.succeeded);
  EXPECT_EQ(report.code, "timeout");
  EXPECT_GE(report.duration_ms, 1000);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(OperationExecutorTest, LocalTimeoutCapsTheEnvelopes) {
  Knob("fake-hang");
  config_.operation_timeouts_s[OperationName::kCacheFlush] = 1;
  const auto start = std::chrono::steady_clock::now();
  const auto report = Run(Envelope("op_32", OperationName::kCacheFlush, {}, 600));
  EXPECT_EQ(report.code, "timeout");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(OperationExecutorTest, OutputTooLarge) {
  config_.max_output_bytes = 512;  // the indexer table is larger
  const auto report = Run(Envelope("op_33", OperationName::kIndexerStatus));
  EXPECT_FALSE(report.succeeded);
  EXPECT_EQ(report.code, "output_too_large");
}

TEST_F(OperationExecutorTest, SpawnFailure) {
  config_.php_binary = magento_ + "/no-such-php";
  const auto report = Run(Envelope("op_34", OperationName::kDbStatus));
  EXPECT_EQ(report.code, "spawn_failed");
}

TEST_F(OperationExecutorTest, OutputOfTheWrongShapeIsAParseError) {
  // /bin/echo exits 0 but prints none of what Magento prints (and sets no maintenance flag).
  config_.php_binary = "/bin/echo";
  for (const auto name : {OperationName::kMaintenanceEnable, OperationName::kCacheFlush, OperationName::kIndexerStatus,
                          OperationName::kReleaseReport}) {
    const auto report = Run(Envelope("op_35", name));
    EXPECT_EQ(report.code, "parse_error") << core::ToString(name);
  }
  // maintenance.disable while the flag stays in place.
  testing::WriteFile(magento_ + "/var/.maintenance.flag", "");
  EXPECT_EQ(Run(Envelope("op_36", OperationName::kMaintenanceDisable)).code, "parse_error");
}

TEST_F(OperationExecutorTest, CacheFlushMustFlushWhatWasAsked) {
  // A php that flushes "config" whatever it was asked: the result would lie, so parse_error.
  const std::string liar = dir_ / "liar-php";
  testing::WriteFile(liar, "#!/bin/sh\nprintf 'Flushed cache types:\\nconfig\\n'\n");
  std::filesystem::permissions(liar, std::filesystem::perms::owner_all);
  config_.php_binary = liar;
  EXPECT_EQ(Run(Envelope("op_37", OperationName::kCacheFlush, {{CacheType::kLayout}})).code, "parse_error");
  EXPECT_EQ(Run(Envelope("op_38", OperationName::kCacheFlush)).code, "parse_error");
  const auto honest = Run(Envelope("op_39", OperationName::kCacheFlush, {{CacheType::kConfig}}));
  EXPECT_TRUE(honest.succeeded) << honest.code;
}

TEST_F(OperationExecutorTest, AFinishedOperationIsReplayedAndAnInterruptedOneNeverRerunsAfterRestart) {
  std::string first_report;
  {
    auto journal = OperationJournal::Open(config_.JournalPath());
    ASSERT_TRUE(journal.ok()) << journal.error().message;
    ProcessRunner runner;
    OperationExecutor executor(config_, runner, &*journal);
    const auto body = executor.Handle(Envelope("op_a1", OperationName::kCacheFlush, {{CacheType::kConfig}}));
    ASSERT_TRUE(body.has_value());
    first_report = *body;
    // The same process receives it again (redelivery): answered from the journal.
    EXPECT_EQ(executor.Handle(Envelope("op_a1", OperationName::kCacheFlush, {{CacheType::kConfig}})), first_report);
  }
  ASSERT_EQ(ArgvLog().size(), 1U);

  // A maintenance.enable that is running when the agent is asked to stop: killed, no report,
  // its journal entry stays "started".
  Knob("fake-hang");
  {
    auto journal = OperationJournal::Open(config_.JournalPath());
    ASSERT_TRUE(journal.ok()) << journal.error().message;
    StopSignal stop;
    ProcessRunner runner(&stop);
    OperationExecutor executor(config_, runner, &*journal);
    std::thread stopper([&] {
      for (int i = 0; i < 500 && ArgvLog().size() < 2; ++i) std::this_thread::sleep_for(milliseconds(10));
      stop.Request();
    });
    const auto body = executor.Handle(Envelope("op_b2", OperationName::kMaintenanceEnable));
    stopper.join();
    EXPECT_FALSE(body.has_value());
    const auto entry = journal->Find("op_b2");
    ASSERT_TRUE(entry.has_value());
    EXPECT_FALSE(entry->finished);
  }
  ASSERT_EQ(ArgvLog().size(), 2U);
  std::filesystem::remove(magento_ + "/var/fake-hang");

  // After the restart: op_b2 is reported interrupted without running, op_a1 replays.
  {
    auto journal = OperationJournal::Open(config_.JournalPath());
    ASSERT_TRUE(journal.ok()) << journal.error().message;
    ProcessRunner runner;
    OperationExecutor executor(config_, runner, &*journal);
    const auto interrupted = executor.Handle(Envelope("op_b2", OperationName::kMaintenanceEnable));
    ASSERT_TRUE(interrupted.has_value());
    auto report = protocol::DecodeOperationReport(OperationName::kMaintenanceEnable, *interrupted);
    ASSERT_TRUE(report.ok()) << *interrupted;
    EXPECT_FALSE(report->succeeded);
    EXPECT_EQ(report->code, "interrupted");
    EXPECT_EQ(executor.Handle(Envelope("op_b2", OperationName::kMaintenanceEnable)), interrupted);

    const auto replayed = executor.Handle(Envelope("op_a1", OperationName::kCacheFlush, {{CacheType::kConfig}}));
    ASSERT_TRUE(replayed.has_value());
    auto replay = protocol::DecodeOperationReport(OperationName::kCacheFlush, *replayed);
    auto original = protocol::DecodeOperationReport(OperationName::kCacheFlush, first_report);
    ASSERT_TRUE(replay.ok() && original.ok());
    EXPECT_TRUE(replay->succeeded);
    EXPECT_EQ(replay->result, original->result);
    EXPECT_EQ(replay->duration_ms, original->duration_ms);
  }
  EXPECT_EQ(ArgvLog().size(), 2U);  // nothing ran again
  EXPECT_FALSE(std::filesystem::exists(magento_ + "/var/.maintenance.flag"));
}

TEST_F(OperationExecutorTest, ARefusedOperationIsNotJournaled) {
  config_.allowed_operations = {};
  auto journal = OperationJournal::Open(config_.JournalPath());
  ASSERT_TRUE(journal.ok());
  ProcessRunner runner;
  OperationExecutor executor(config_, runner, &*journal);
  ASSERT_TRUE(executor.Handle(Envelope("op_c3", OperationName::kDbStatus)).has_value());
  EXPECT_FALSE(journal->Find("op_c3").has_value());
}

TEST_F(OperationExecutorTest, NoCanaryInAnyReportOfAnyOutcome) {
  // Every outcome against the canary-laden fake store, encoded as it would be sent.
  ProcessRunner runner;
  OperationExecutor executor(config_, runner, nullptr);
  std::string all;
  for (const auto name : core::AllOperationNames()) {
    all += executor.Handle(Envelope("op_d4", name)).value_or("") + "\n";
  }
  Knob("fake-fail");
  for (const auto name : core::AllOperationNames()) {
    all += executor.Handle(Envelope("op_d5", name)).value_or("") + "\n";
  }
  ExpectNoCanary(all);
  EXPECT_EQ(all.find("CANARY-DB-PASSWORD"), std::string::npos);
}

}  // namespace
}  // namespace storeplane::agent
