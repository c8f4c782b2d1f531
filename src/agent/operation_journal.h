// The agent's journal of the operations it has started: an append-only file of JSON lines,
// fsynced after each line, so that a redelivered operation never runs twice. An id that
// finished is answered with its stored report; one that started but never finished (the
// agent stopped or crashed while it ran) is reported failed/"interrupted".
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/result.h"

namespace storeplane::agent {

struct JournalEntry {
  std::string id;
  std::string name;  // the operation name as delivered, for the log
  bool finished = false;
  std::string report;  // the encoded report body (finished only), re-sent as is
};

// Lines: {"id":"op_1","state":"started","name":"cache.flush"}
//        {"id":"op_1","state":"finished","report":{"outcome":"succeeded",...}}
// Not thread-safe: one thread (the agent's poll loop) owns it.
class OperationJournal {
 public:
  static constexpr std::size_t kKeepIds = 1000;

  // Reads the journal (a torn last line is ignored), keeps the newest `keep_ids` ids,
  // rewrites it atomically and opens it for appending. The file is created 0600.
  static Result<OperationJournal> Open(const std::string& path, std::size_t keep_ids = kKeepIds);

  OperationJournal(OperationJournal&& other) noexcept;
  OperationJournal& operator=(OperationJournal&& other) noexcept;
  OperationJournal(const OperationJournal&) = delete;
  OperationJournal& operator=(const OperationJournal&) = delete;
  ~OperationJournal();

  std::optional<JournalEntry> Find(const std::string& id) const;
  // Appended and fsynced before the operation runs; an error means it must not run.
  Status RecordStarted(const std::string& id, const std::string& name);
  Status RecordFinished(const std::string& id, const std::string& encoded_report);
  std::size_t size() const { return entries_.size(); }

 private:
  struct Slot {
    JournalEntry entry;
    std::uint64_t seq = 0;  // position of its latest line; larger is newer
  };
  OperationJournal(std::string path, std::size_t keep_ids) : path_(std::move(path)), keep_ids_(keep_ids) {}
  Status Load();
  Status Rewrite();  // keeps the newest keep_ids_ ids and reopens for appending
  Status Append(const std::string& line);

  std::string path_;
  std::size_t keep_ids_ = kKeepIds;
  int fd_ = -1;
  std::uint64_t next_seq_ = 0;
  std::map<std::string, Slot> entries_;
};

}  // namespace storeplane::agent
