#include "agent/operation_journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

namespace storeplane::agent {
namespace {

Error JournalError(const std::string& path, const std::string& what) {
  return Error::Internal("operation journal " + path + ": " + what);
}

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::Internal(std::strerror(errno));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return Status::Ok();
}

void SyncDirectoryOf(const std::string& path) {
  auto dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

std::string StartedLine(const std::string& id, const std::string& name) {
  boost::json::object line;
  line["id"] = id;
  line["state"] = "started";
  line["name"] = name;
  return boost::json::serialize(line) + "\n";
}

Result<std::string> FinishedLine(const std::string& id, const std::string& name, const std::string& encoded_report) {
  boost::system::error_code ec;
  auto report = boost::json::parse(encoded_report, ec);
  if (ec || !report.is_object()) return Error::Internal("the report to journal is not a JSON object");
  boost::json::object line;
  line["id"] = id;
  line["state"] = "finished";
  if (!name.empty()) line["name"] = name;
  line["report"] = std::move(report);
  return boost::json::serialize(line) + "\n";
}

}  // namespace

Result<OperationJournal> OperationJournal::Open(const std::string& path, std::size_t keep_ids) {
  OperationJournal journal(path, keep_ids);
  SP_RETURN_IF_ERROR(journal.Load());
  SP_RETURN_IF_ERROR(journal.Rewrite());
  return journal;
}

OperationJournal::OperationJournal(OperationJournal&& other) noexcept
    : path_(std::move(other.path_)),
      keep_ids_(other.keep_ids_),
      fd_(std::exchange(other.fd_, -1)),
      next_seq_(other.next_seq_),
      entries_(std::move(other.entries_)) {}

OperationJournal& OperationJournal::operator=(OperationJournal&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    keep_ids_ = other.keep_ids_;
    fd_ = std::exchange(other.fd_, -1);
    next_seq_ = other.next_seq_;
    entries_ = std::move(other.entries_);
  }
  return *this;
}

OperationJournal::~OperationJournal() {
  if (fd_ >= 0) ::close(fd_);
}

Status OperationJournal::Load() {
  std::ifstream in(path_);
  if (!in) {
    std::error_code ec;
    if (std::filesystem::exists(path_, ec)) return JournalError(path_, "cannot be read");
    return Status::Ok();  // a first start
  }
  std::string text;
  while (std::getline(in, text)) {
    boost::system::error_code ec;
    const auto value = boost::json::parse(text, ec);
    if (ec || !value.is_object()) continue;  // a torn last line after a crash
    const auto& line = value.as_object();
    const auto* id = line.if_contains("id");
    const auto* state = line.if_contains("state");
    if (id == nullptr || !id->is_string() || state == nullptr || !state->is_string()) continue;
    auto& slot = entries_[std::string(id->as_string())];
    slot.entry.id = std::string(id->as_string());
    if (const auto* name = line.if_contains("name"); name != nullptr && name->is_string()) {
      slot.entry.name = std::string(name->as_string());
    }
    slot.seq = next_seq_++;
    if (state->as_string() == "finished") {
      const auto* report = line.if_contains("report");
      if (report == nullptr || !report->is_object()) continue;  // stays "started"
      slot.entry.finished = true;
      slot.entry.report = boost::json::serialize(*report);
    }
  }
  return Status::Ok();
}

Status OperationJournal::Rewrite() {
  std::vector<std::pair<std::uint64_t, const Slot*>> by_age;
  by_age.reserve(entries_.size());
  for (const auto& [id, slot] : entries_) by_age.emplace_back(slot.seq, &slot);
  std::sort(by_age.begin(), by_age.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  const std::size_t drop = by_age.size() > keep_ids_ ? by_age.size() - keep_ids_ : 0;

  std::string text;
  std::map<std::string, Slot> kept;
  std::uint64_t seq = 0;
  for (std::size_t i = drop; i < by_age.size(); ++i) {
    const JournalEntry& entry = by_age[i].second->entry;
    if (entry.finished) {
      auto line = FinishedLine(entry.id, entry.name, entry.report);
      if (!line.ok()) return JournalError(path_, line.error().message);
      text += *line;
    } else {
      text += StartedLine(entry.id, entry.name);
    }
    kept[entry.id] = Slot{entry, seq++};
  }

  const std::string temp = path_ + ".tmp";
  ::unlink(temp.c_str());
  const int temp_fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (temp_fd < 0) return JournalError(path_, std::string("cannot create ") + temp + ": " + std::strerror(errno));
  Status written = WriteAll(temp_fd, text);
  if (written.ok() && ::fsync(temp_fd) != 0) written = Error::Internal(std::strerror(errno));
  ::close(temp_fd);
  if (!written.ok()) {
    ::unlink(temp.c_str());
    return JournalError(path_, "cannot write: " + written.error().message);
  }
  if (::rename(temp.c_str(), path_.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(temp.c_str());
    return JournalError(path_, "cannot replace: " + reason);
  }
  SyncDirectoryOf(path_);

  if (fd_ >= 0) ::close(fd_);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd_ < 0) return JournalError(path_, std::string("cannot open for appending: ") + std::strerror(errno));
  entries_ = std::move(kept);
  next_seq_ = seq;
  return Status::Ok();
}

Status OperationJournal::Append(const std::string& line) {
  if (fd_ < 0) return JournalError(path_, "is not open");
  if (auto s = WriteAll(fd_, line); !s.ok()) return JournalError(path_, "cannot append: " + s.error().message);
  if (::fsync(fd_) != 0) return JournalError(path_, std::string("cannot fsync: ") + std::strerror(errno));
  return Status::Ok();
}

std::optional<JournalEntry> OperationJournal::Find(const std::string& id) const {
  const auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  return it->second.entry;
}

Status OperationJournal::RecordStarted(const std::string& id, const std::string& name) {
  SP_RETURN_IF_ERROR(Append(StartedLine(id, name)));
  auto& slot = entries_[id];
  slot.entry = JournalEntry{id, name, false, {}};
  slot.seq = next_seq_++;
  return Status::Ok();
}

Status OperationJournal::RecordFinished(const std::string& id, const std::string& encoded_report) {
  const auto known = entries_.find(id);
  const std::string name = known == entries_.end() ? std::string() : known->second.entry.name;
  auto line = FinishedLine(id, name, encoded_report);
  if (!line.ok()) return JournalError(path_, line.error().message);
  SP_RETURN_IF_ERROR(Append(*line));
  auto& slot = entries_[id];
  slot.entry.name = name;
  slot.entry.id = id;
  slot.entry.finished = true;
  slot.entry.report = encoded_report;
  slot.seq = next_seq_++;
  // A long-running agent keeps the journal (and this map) bounded.
  if (entries_.size() > 2 * keep_ids_) SP_RETURN_IF_ERROR(Rewrite());
  return Status::Ok();
}

}  // namespace storeplane::agent
