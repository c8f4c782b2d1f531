// `storeplane audit list|export|verify`: the audit trail. `verify` checks the hash chain and
// the signed checkpoints offline (core::VerifyChain), either of an NDJSON export or of the
// records and checkpoints fetched from a live server, and names the first bad record.
#pragma once

#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cli/command_support.h"
#include "core/audit.h"
#include "core/result.h"

namespace CLI {
class App;
}

namespace storeplane::cli {

void AddAuditCommands(CLI::App& root, CliState& state);

// An AuditRecord / checkpoint from its API JSON (the "kind" member, if any, is ignored).
// Errors (kInvalidArgument) name the missing or mistyped field. A record whose "time" is
// not the RFC 3339 spelling of its "time_ms" is refused too: "time" is outside the hash.
Result<core::AuditRecord> AuditRecordFromJson(const boost::json::value& value);
Result<core::AuditCheckpoint> AuditCheckpointFromJson(const boost::json::value& value);

struct AuditTrail {
  std::vector<core::AuditRecord> records;  // in the order read
  std::vector<core::AuditCheckpoint> checkpoints;
};

// Reads an export (one JSON object per line, "kind": "record" or "checkpoint"; blank lines
// allowed) and verifies it. A line that cannot be read fails the verification at the record
// it holds or, when unreadable, at the record expected there.
core::ChainReport VerifyAuditExport(std::string_view ndjson, std::string_view public_pem);
// Verifies a trail already read.
core::ChainReport VerifyAuditTrail(const AuditTrail& trail, std::string_view public_pem);

// "storeplane: audit verification failed at record 17: <problem>" (no newline).
std::string VerifyFailureLine(const core::ChainReport& report);
// "audit chain OK: N records, M checkpoints verified" (no newline).
std::string VerifySuccessLine(const core::ChainReport& report);

// "/v1/audit" with the filters that are set.
struct AuditFilters {
  std::string after;  // a seq
  int limit = 0;      // 0: server default
  std::string principal;
  std::string action;
  std::string target;
};
std::string AuditListPath(const AuditFilters& filters);

// SEQ TIME PRINCIPAL ACTION TARGET DECISION RULE OUTCOME, one row per record.
std::string AuditTable(const boost::json::array& records);

// Writes `data` to `path` atomically: a temporary file in the same directory (mode 0600),
// flushed to disk, then renamed over `path`. kInvalidArgument names the path and the problem.
Status WriteFileAtomically(const std::string& path, std::string_view data);

}  // namespace storeplane::cli
