// The operation journal: what it remembers across reopenings, torn lines, compaction to the
// newest ids, and its file mode.
#include "agent/operation_journal.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "agent_test_support.h"

namespace storeplane::agent {
namespace {

using testing::ReadFile;
using testing::SplitLines;
using testing::TempDir;

constexpr const char* kReport = R"({"outcome":"failed","code":"timeout","duration_ms":5})";

TEST(OperationJournalTest, RemembersStartedAndFinishedAcrossReopening) {
  TempDir dir;
  const std::string path = dir / "journal";
  {
    auto journal = OperationJournal::Open(path);
    ASSERT_TRUE(journal.ok()) << journal.error().message;
    EXPECT_FALSE(journal->Find("op_1").has_value());
    ASSERT_TRUE(journal->RecordStarted("op_1", "cache.flush").ok());
    ASSERT_TRUE(journal->RecordFinished("op_1", kReport).ok());
    ASSERT_TRUE(journal->RecordStarted("op_2", "maintenance.enable").ok());
    EXPECT_EQ(SplitLines(ReadFile(path)).size(), 3U);  // appended as it goes
  }
  struct stat st = {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);

  auto journal = OperationJournal::Open(path);
  ASSERT_TRUE(journal.ok()) << journal.error().message;
  const auto one = journal->Find("op_1");
  ASSERT_TRUE(one.has_value());
  EXPECT_TRUE(one->finished);
  EXPECT_EQ(one->report, kReport);
  EXPECT_EQ(one->name, "cache.flush");
  const auto two = journal->Find("op_2");
  ASSERT_TRUE(two.has_value());
  EXPECT_FALSE(two->finished);
  EXPECT_EQ(two->name, "maintenance.enable");
  EXPECT_EQ(journal->size(), 2U);
}

TEST(OperationJournalTest, ATornLastLineIsIgnored) {
  TempDir dir;
  const std::string path = dir / "journal";
  testing::WriteFile(path, std::string(R"({"id":"op_1","state":"started","name":"db.status"})") + "\n" +
                               R"({"id":"op_1","state":"finished","report":{"outcome":"fai)");
  auto journal = OperationJournal::Open(path);
  ASSERT_TRUE(journal.ok()) << journal.error().message;
  const auto entry = journal->Find("op_1");
  ASSERT_TRUE(entry.has_value());
  EXPECT_FALSE(entry->finished);  // the crash happened before "finished" was durable
  // Appending after the compaction starts on a fresh line.
  ASSERT_TRUE(journal->RecordFinished("op_1", kReport).ok());
  auto reopened = OperationJournal::Open(path);
  ASSERT_TRUE(reopened.ok());
  EXPECT_TRUE(reopened->Find("op_1")->finished);
}

TEST(OperationJournalTest, CompactionKeepsTheNewestIds) {
  TempDir dir;
  const std::string path = dir / "journal";
  {
    auto journal = OperationJournal::Open(path);
    ASSERT_TRUE(journal.ok());
    for (int i = 0; i < 6; ++i) {
      const std::string id = "op_" + std::to_string(i);
      ASSERT_TRUE(journal->RecordStarted(id, "db.status").ok());
      if (i != 4) {
        ASSERT_TRUE(journal->RecordFinished(id, kReport).ok());
      }
    }
  }
  auto journal = OperationJournal::Open(path, 3);
  ASSERT_TRUE(journal.ok());
  EXPECT_EQ(journal->size(), 3U);
  EXPECT_FALSE(journal->Find("op_2").has_value());
  EXPECT_TRUE(journal->Find("op_3").has_value());
  EXPECT_FALSE(journal->Find("op_4")->finished);
  EXPECT_TRUE(journal->Find("op_5")->finished);
  EXPECT_EQ(SplitLines(ReadFile(path)).size(), 3U);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(OperationJournalTest, StaysBoundedWhileRunning) {
  TempDir dir;
  auto journal = OperationJournal::Open(dir / "journal", 2);
  ASSERT_TRUE(journal.ok());
  for (int i = 0; i < 10; ++i) {
    const std::string id = "op_" + std::to_string(i);
    ASSERT_TRUE(journal->RecordStarted(id, "db.status").ok());
    ASSERT_TRUE(journal->RecordFinished(id, kReport).ok());
  }
  EXPECT_LE(journal->size(), 4U);
  EXPECT_TRUE(journal->Find("op_9").has_value());
}

TEST(OperationJournalTest, AnUnusableDirectoryIsAnError) {
  EXPECT_FALSE(OperationJournal::Open("/nonexistent/dir/journal").ok());
}

}  // namespace
}  // namespace storeplane::agent
