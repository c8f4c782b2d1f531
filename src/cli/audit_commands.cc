#include "cli/audit_commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "cli/output.h"
#include "core/time_format.h"

namespace storeplane::cli {
namespace {

namespace json = boost::json;

constexpr int kVerifyPageSize = 1000;

// --- reading records ------------------------------------------------------------------

std::optional<std::int64_t> IntegerOf(const json::value& value) {
  if (value.is_int64()) return value.as_int64();
  if (value.is_uint64() && value.as_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(value.as_uint64());
  }
  return std::nullopt;
}

Result<std::int64_t> IntegerField(const json::object& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end()) return Error::Invalid("field \"" + std::string(key) + "\" is missing", std::string(key));
  auto number = IntegerOf(it->value());
  if (!number) return Error::Invalid("field \"" + std::string(key) + "\" is not an integer", std::string(key));
  return *number;
}

// A string member; null counts as "" (the hash covers the empty string then).
Result<std::string> StringField(const json::object& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end()) return Error::Invalid("field \"" + std::string(key) + "\" is missing", std::string(key));
  if (it->value().is_null()) return std::string();
  if (!it->value().is_string())
    return Error::Invalid("field \"" + std::string(key) + "\" is not a string", std::string(key));
  return std::string(it->value().as_string());
}

// The seq of a record or checkpoint line, if it can be read at all.
std::optional<std::int64_t> SeqOf(const json::value& value) {
  if (!value.is_object()) return std::nullopt;
  auto it = value.as_object().find("seq");
  if (it == value.as_object().end()) return std::nullopt;
  return IntegerOf(it->value());
}

// Assigns a string field or returns its error.
#define SP_CLI_STRING(target, object, key)     \
  do {                                         \
    auto sp_value_ = StringField(object, key); \
    if (!sp_value_) return sp_value_.error();  \
    target = std::move(sp_value_.value());     \
  } while (false)

core::ChainReport Failed(std::int64_t seq, std::string problem, std::int64_t records) {
  core::ChainReport report;
  report.ok = false;
  report.first_bad_seq = seq;
  report.problem = std::move(problem);
  report.records = records;
  return report;
}

// The earlier of a problem found while reading (at `seq`) and any problem in what was read
// before it.
core::ChainReport FirstOf(const AuditTrail& read_so_far, std::string_view public_pem, std::int64_t seq,
                          std::string problem) {
  core::ChainReport before = core::VerifyChain(read_so_far.records, read_so_far.checkpoints, public_pem);
  if (!before.ok && (seq == 0 || (before.first_bad_seq != 0 && before.first_bad_seq <= seq))) return before;
  return Failed(seq, std::move(problem), static_cast<std::int64_t>(read_so_far.records.size()));
}

std::int64_t NextExpectedSeq(const AuditTrail& trail) {
  return trail.records.empty() ? 1 : trail.records.back().seq + 1;
}

// --- audit list -----------------------------------------------------------------------

struct ListArgs {
  AuditFilters filters;
  bool all = false;
};

int RunList(CliState& state, const ListArgs& args) {
  return RunPagedListing(state, {[&](const std::string& cursor) {
                                   AuditFilters filters = args.filters;
                                   if (!cursor.empty()) filters.after = cursor;
                                   return AuditListPath(filters);
                                 },
                                 args.all, "records", "--after", "No audit records found.\n", AuditTable});
}

// --- audit export ---------------------------------------------------------------------

int RunExport(CliState& state, const std::string& file) {
  return WithSession(state, [&](ApiSession& session) {
    auto result =
        session.Call("GET", "/v1/audit/export", {}, {{"Accept", "application/x-ndjson, application/problem+json"}});
    if (!result) return ReportTransport(state, result.error());
    const client::HttpResponse& response = result.value();
    if (response.status < 200 || response.status >= 300) return ReportProblem(state, response);
    std::string body = response.body;
    if (!body.empty() && body.back() != '\n') body += '\n';
    if (file.empty() || file == "-") {
      *state.out << body << std::flush;
      return static_cast<int>(kExitOk);
    }
    Status written = WriteFileAtomically(file, body);
    if (!written.ok()) {
      *state.err << ErrorLine("export not written", written.error().message) << "\n";
      return static_cast<int>(kExitServerError);
    }
    std::int64_t records = 0;
    std::int64_t checkpoints = 0;
    std::istringstream lines(body);
    for (std::string line; std::getline(lines, line);) {
      boost::system::error_code ec;
      json::value value = json::parse(line, ec);
      if (ec || !value.is_object() || !value.as_object().contains("kind")) continue;
      if (value.at("kind") == "record") ++records;
      if (value.at("kind") == "checkpoint") ++checkpoints;
    }
    json::object summary{{"file", file}, {"records", records}, {"checkpoints", checkpoints}};
    Print(state, FormatOf(session), summary, [&] {
      return "exported " + std::to_string(records) + " records and " + std::to_string(checkpoints) +
             " checkpoints to " + file + "\n";
    });
    return static_cast<int>(kExitOk);
  });
}

// --- audit verify ---------------------------------------------------------------------

struct VerifyArgs {
  std::string file;
  std::string public_key_file;
};

Result<std::string> ReadFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::Invalid("cannot read " + what + " " + path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Error::Invalid("cannot read " + what + " " + path);
  return text.str();
}

int ReportVerification(const CliState& state, OutputFormat format, const core::ChainReport& report) {
  json::object summary{
      {"ok", report.ok}, {"records", report.records}, {"checkpoints_verified", report.checkpoints_verified}};
  if (!report.ok) {
    summary["first_bad_seq"] = report.first_bad_seq;
    summary["problem"] = report.problem;
  }
  if (format != OutputFormat::kTable) Print(state, format, summary, [] { return std::string(); });
  if (!report.ok) {
    *state.err << VerifyFailureLine(report) << "\n";
    return static_cast<int>(kExitVerifyFailed);
  }
  if (format == OutputFormat::kTable) *state.out << VerifySuccessLine(report) << "\n";
  if (report.checkpoints_verified == 0) {
    *state.err << "storeplane: note: no signed checkpoint covers these records yet; the chain is only internally "
                  "consistent\n";
  }
  return static_cast<int>(kExitOk);
}

// Fetches every item of a paged audit listing ("after" cursors).
std::variant<json::array, Failure> FetchAll(const CliState& state, ApiSession& session, const std::string& base) {
  json::array items;
  auto collected = CollectPages(
      state, session,
      [&](const std::string& cursor) {
        return WithQuery(base, {{"after", cursor}, {"limit", std::to_string(kVerifyPageSize)}});
      },
      true, items);
  if (auto* failure = std::get_if<Failure>(&collected)) return *failure;
  return items;
}

int VerifyLive(CliState& state, ApiSession& session, std::string public_pem) {
  if (public_pem.empty()) {
    auto reply = CallJson(state, session, "GET", "/v1/audit/public-key");
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const json::object& key = std::get<JsonReply>(reply).body.as_object();
    auto pem = key.find("public_key_pem");
    if (pem == key.end() || !pem->value().is_string() || pem->value().as_string().empty()) {
      return UnexpectedResponse(state, "the public key answer has no \"public_key_pem\"");
    }
    public_pem = std::string(pem->value().as_string());
    *state.err << "storeplane: note: using the public key fetched from the server (key id "
               << OneLine(CellText(key, "key_id"))
               << "); this proves only that the trail is internally consistent, not that the server did not "
                  "rewrite it: pass --public-key with a key you hold\n";
  }
  // Checkpoints first: records written meanwhile only extend the chain, while a checkpoint
  // fetched after the records could cover records not fetched and read as truncation.
  auto checkpoints = FetchAll(state, session, "/v1/audit/checkpoints");
  if (auto* failure = std::get_if<Failure>(&checkpoints)) return failure->exit_code;
  auto records = FetchAll(state, session, "/v1/audit");
  if (auto* failure = std::get_if<Failure>(&records)) return failure->exit_code;

  AuditTrail trail;
  for (const auto& item : std::get<json::array>(records)) {
    auto record = AuditRecordFromJson(item);
    if (!record) {
      std::int64_t seq = SeqOf(item).value_or(NextExpectedSeq(trail));
      return ReportVerification(state, FormatOf(session),
                                FirstOf(trail, public_pem, seq, "unreadable record: " + record.error().message));
    }
    trail.records.push_back(std::move(record.value()));
  }
  for (const auto& item : std::get<json::array>(checkpoints)) {
    auto checkpoint = AuditCheckpointFromJson(item);
    if (!checkpoint) {
      return ReportVerification(state, FormatOf(session),
                                FirstOf(trail, public_pem, 0, "unreadable checkpoint: " + checkpoint.error().message));
    }
    trail.checkpoints.push_back(std::move(checkpoint.value()));
  }
  return ReportVerification(state, FormatOf(session), VerifyAuditTrail(trail, public_pem));
}

int RunVerify(CliState& state, const VerifyArgs& args) {
  std::string public_pem;
  if (!args.public_key_file.empty()) {
    auto pem = ReadFile(args.public_key_file, "public key file");
    if (!pem) return UsageError(state, pem.error().message);
    public_pem = std::move(pem.value());
  }
  if (!args.file.empty()) {
    if (public_pem.empty()) {
      return UsageError(state, "--file needs --public-key: an export is verified offline, against a key you hold");
    }
    auto format = ParseOutputFormat(state.flags.output).value_or(OutputFormat::kTable);
    auto text = ReadFile(args.file, "export file");
    if (!text) return UsageError(state, text.error().message);
    return ReportVerification(state, format, VerifyAuditExport(text.value(), public_pem));
  }
  return WithSession(state, [&](ApiSession& session) { return VerifyLive(state, session, public_pem); });
}

}  // namespace

// --- pure helpers ---------------------------------------------------------------------

Result<core::AuditRecord> AuditRecordFromJson(const json::value& value) {
  if (!value.is_object()) return Error::Invalid("not a JSON object");
  const json::object& object = value.as_object();
  core::AuditRecord record;
  auto seq = IntegerField(object, "seq");
  if (!seq) return seq.error();
  record.seq = seq.value();
  auto time_ms = IntegerField(object, "time_ms");
  if (!time_ms) return time_ms.error();
  record.entry.time_ms = time_ms.value();
  core::AuditEntry& entry = record.entry;
  SP_CLI_STRING(entry.principal, object, "principal");
  SP_CLI_STRING(entry.source, object, "source");
  SP_CLI_STRING(entry.action, object, "action");
  SP_CLI_STRING(entry.target, object, "target");
  SP_CLI_STRING(entry.request_id, object, "request_id");
  SP_CLI_STRING(entry.decision, object, "decision");
  SP_CLI_STRING(entry.rule, object, "rule");
  SP_CLI_STRING(entry.outcome, object, "outcome");
  SP_CLI_STRING(record.prev_hash, object, "prev_hash");
  SP_CLI_STRING(record.hash, object, "hash");
  if (auto it = object.find("params"); it != object.end() && !it->value().is_null()) {
    if (!it->value().is_object()) return Error::Invalid("field \"params\" is not an object", "params");
    for (const auto& param : it->value().as_object()) {
      if (!param.value().is_string()) {
        return Error::Invalid("parameter \"" + std::string(param.key()) + "\" is not a string", "params");
      }
      entry.params[std::string(param.key())] = std::string(param.value().as_string());
    }
  }
  if (auto it = object.find("time"); it != object.end() && !it->value().is_null()) {
    std::string expected = core::FormatRfc3339Millis(entry.time_ms);
    if (!it->value().is_string() || it->value().as_string() != expected) {
      return Error::Invalid("field \"time\" is not " + expected + ", the time of its time_ms (the record was edited)",
                            "time");
    }
  }
  return record;
}

Result<core::AuditCheckpoint> AuditCheckpointFromJson(const json::value& value) {
  if (!value.is_object()) return Error::Invalid("not a JSON object");
  const json::object& object = value.as_object();
  core::AuditCheckpoint checkpoint;
  auto seq = IntegerField(object, "seq");
  if (!seq) return seq.error();
  checkpoint.seq = seq.value();
  auto time_ms = IntegerField(object, "time_ms");
  if (!time_ms) return time_ms.error();
  checkpoint.time_ms = time_ms.value();
  SP_CLI_STRING(checkpoint.hash, object, "hash");
  SP_CLI_STRING(checkpoint.key_id, object, "key_id");
  SP_CLI_STRING(checkpoint.signature, object, "signature");
  return checkpoint;
}

#undef SP_CLI_STRING

core::ChainReport VerifyAuditTrail(const AuditTrail& trail, std::string_view public_pem) {
  if (trail.records.empty()) return Failed(0, "no audit records to verify", 0);
  return core::VerifyChain(trail.records, trail.checkpoints, public_pem);
}

core::ChainReport VerifyAuditExport(std::string_view ndjson, std::string_view public_pem) {
  AuditTrail trail;
  std::size_t line_number = 0;
  std::size_t start = 0;
  while (start < ndjson.size()) {
    std::size_t end = ndjson.find('\n', start);
    if (end == std::string_view::npos) end = ndjson.size();
    std::string_view line = ndjson.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    const std::string where = "line " + std::to_string(line_number) + ": ";

    boost::system::error_code ec;
    json::value value = json::parse(line, ec);
    std::string kind;
    if (!ec && value.is_object()) {
      if (auto it = value.as_object().find("kind"); it != value.as_object().end() && it->value().is_string()) {
        kind = std::string(it->value().as_string());
      }
    }
    if (ec || !value.is_object()) {
      return FirstOf(trail, public_pem, NextExpectedSeq(trail), where + "not a JSON object");
    }
    if (kind == "record") {
      auto record = AuditRecordFromJson(value);
      if (!record) {
        return FirstOf(trail, public_pem, SeqOf(value).value_or(NextExpectedSeq(trail)),
                       where + record.error().message);
      }
      trail.records.push_back(std::move(record.value()));
    } else if (kind == "checkpoint") {
      auto checkpoint = AuditCheckpointFromJson(value);
      if (!checkpoint) return FirstOf(trail, public_pem, 0, where + "checkpoint: " + checkpoint.error().message);
      trail.checkpoints.push_back(std::move(checkpoint.value()));
    } else {
      return FirstOf(trail, public_pem, SeqOf(value).value_or(NextExpectedSeq(trail)),
                     where + (kind.empty() ? "no \"kind\"" : "unknown kind \"" + kind + "\"") +
                         "; expected \"record\" or \"checkpoint\"");
    }
  }
  return VerifyAuditTrail(trail, public_pem);
}

std::string VerifyFailureLine(const core::ChainReport& report) {
  if (report.first_bad_seq <= 0) return ErrorLine("audit verification failed", report.problem);
  const std::string seq = std::to_string(report.first_bad_seq);
  std::string problem = report.problem;
  const std::string prefix = "record " + seq + ": ";
  if (problem.rfind(prefix, 0) == 0) problem = problem.substr(prefix.size());
  return ErrorLine("audit verification failed at record " + seq, problem);
}

std::string VerifySuccessLine(const core::ChainReport& report) {
  return "audit chain OK: " + std::to_string(report.records) + " records, " +
         std::to_string(report.checkpoints_verified) + " checkpoints verified";
}

std::string AuditListPath(const AuditFilters& filters) {
  return WithQuery("/v1/audit", {{"after", filters.after},
                                 {"limit", filters.limit > 0 ? std::to_string(filters.limit) : std::string()},
                                 {"principal", filters.principal},
                                 {"action", filters.action},
                                 {"target", filters.target}});
}

std::string AuditTable(const json::array& records) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : records) {
    if (!item.is_object()) continue;
    const auto& record = item.as_object();
    rows.push_back({CellText(record, "seq"), CellText(record, "time"), CellText(record, "principal"),
                    CellText(record, "action"), CellText(record, "target"), CellText(record, "decision"),
                    CellText(record, "rule"), CellText(record, "outcome")});
  }
  return RenderTable({"SEQ", "TIME", "PRINCIPAL", "ACTION", "TARGET", "DECISION", "RULE", "OUTCOME"}, rows);
}

Status WriteFileAtomically(const std::string& path, std::string_view data) {
  namespace fs = std::filesystem;
  fs::path target(path);
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  std::string pattern = (dir / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  int fd = mkstemp(pattern.data());
  if (fd < 0) return Error::Invalid("cannot create a file in " + dir.string() + ": " + std::strerror(errno));
  auto fail = [&](const std::string& what) {
    int saved = errno;
    close(fd);
    unlink(pattern.c_str());
    return Error::Invalid("cannot " + what + " " + path + ": " + std::strerror(saved));
  };
  std::size_t written = 0;
  while (written < data.size()) {
    ssize_t n = write(fd, data.data() + written, data.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write");
    }
    written += static_cast<std::size_t>(n);
  }
  if (fsync(fd) != 0) return fail("flush");
  if (close(fd) != 0) {
    int saved = errno;
    unlink(pattern.c_str());
    return Error::Invalid("cannot write " + path + ": " + std::strerror(saved));
  }
  if (rename(pattern.c_str(), path.c_str()) != 0) {
    int saved = errno;
    unlink(pattern.c_str());
    return Error::Invalid("cannot write " + path + ": " + std::strerror(saved));
  }
  int dir_fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    fsync(dir_fd);  // the rename itself made durable; best effort
    close(dir_fd);
  }
  return Status::Ok();
}

// --- command registration -------------------------------------------------------------

void AddAuditCommands(CLI::App& root, CliState& state) {
  CLI::App* audit = root.add_subcommand("audit", "List, export and verify the tamper-evident audit trail");
  audit->require_subcommand(1);

  auto list_args = std::make_shared<ListArgs>();
  CLI::App* list = audit->add_subcommand("list", "List audit records, oldest first");
  list->add_option("--after", list_args->filters.after, "Only records after this seq (the page cursor)")
      ->check(CLI::NonNegativeNumber);
  list->add_option("--limit", list_args->filters.limit, "Page size (1..1000)")->check(CLI::Range(1, 1000));
  list->add_option("--principal", list_args->filters.principal, "Only records of this principal");
  list->add_option("--action", list_args->filters.action, "Only records of this action, e.g. store.register");
  list->add_option("--target", list_args->filters.target, "Only records of this target, e.g. store/acme");
  list->add_flag("--all", list_args->all, "Follow next_cursor and list every matching record");
  list->final_callback([&state, list_args] {
    state.action = Guarded(state, [&state, list_args] { return RunList(state, *list_args); });
  });

  auto export_file = std::make_shared<std::string>();
  CLI::App* export_cmd = audit->add_subcommand("export", "Export every record and checkpoint as NDJSON");
  export_cmd->add_option("-f,--file", *export_file, "Write to FILE (atomically, mode 0600) instead of stdout");
  export_cmd->final_callback([&state, export_file] {
    state.action = Guarded(state, [&state, export_file] { return RunExport(state, *export_file); });
  });

  auto verify_args = std::make_shared<VerifyArgs>();
  CLI::App* verify = audit->add_subcommand("verify", "Verify the hash chain and signed checkpoints, offline");
  verify->add_option("--file", verify_args->file, "An NDJSON export (from audit export); default: the live server");
  verify->add_option("--public-key", verify_args->public_key_file, "PEM file of the audit signing public key");
  verify->footer(
      "Checks that seq runs 1, 2, 3... without gaps, each prev_hash is the previous hash, each\n"
      "hash matches its record, every checkpoint is signed by the key and names a record with\n"
      "that hash, and none lies beyond the last record. Exits 8 naming the first bad record.\n"
      "--file needs --public-key. Without --public-key the server's own key is fetched, which\n"
      "proves only internal consistency: keep the public key where the server cannot change it.");
  verify->final_callback([&state, verify_args] {
    state.action = Guarded(state, [&state, verify_args] { return RunVerify(state, *verify_args); });
  });
}

}  // namespace storeplane::cli
