// What the operator CLI prints and how it exits: exit codes, the one-line error message
// built from an RFC 9457 problem+json response, and table / JSON / YAML rendering of
// API objects. Pure functions over values; nothing here does I/O.
#pragma once

#include <boost/json/value.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/cli_config.h"
#include "client/http_client.h"
#include "core/result.h"

namespace storeplane::cli {

// Process exit codes; also listed in the footer of `storeplane --help`.
enum ExitCode : int {
  kExitOk = 0,
  kExitServerError = 1,   // 5xx or anything unexpected
  kExitUsage = 2,         // bad flags or arguments, bad k=v syntax, bad local config
  kExitNotFound = 3,      // 404
  kExitAuth = 4,          // 401, 403
  kExitConflict = 5,      // 409, 412, 428 (and a label change refused without --overwrite)
  kExitUnreachable = 6,   // the server cannot be reached (connect, TLS, timeout)
  kExitRejected = 7,      // 400, 413, 415, 422
  kExitVerifyFailed = 8,  // `audit verify`: the audit chain does not verify
};

int ExitCodeForStatus(long http_status);
int ExitCodeForError(const Error& error);  // for errors produced locally

// The fields of an RFC 9457 problem document, as far as the server sent them.
struct Problem {
  long status = 0;
  std::string type;
  std::string title;
  std::string detail;
  std::string field;
  std::string request_id;
};

// Reads problem+json from a response; falls back to the status line and the
// X-Request-Id header when the body is not a problem document.
Problem ParseProblem(const client::HttpResponse& response);

// "storeplane: <title>: <detail> (field F, request id R)", on one line, no newline.
std::string ProblemLine(const Problem& problem);
std::string ErrorLine(std::string_view title, std::string_view detail);

// Control characters (newlines included) replaced by spaces, so a message stays on one line.
std::string OneLine(std::string_view text);

// Indented JSON with a trailing newline.
std::string ToJsonText(const boost::json::value& value);
// Block-style YAML with a trailing newline; strings that would read back as another
// type (true, 1, null, "") are quoted.
std::string ToYamlText(const boost::json::value& value);

// Left-aligned columns separated by three spaces, each line ending in a newline.
std::string RenderTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

// "key:   value" lines, the values aligned one column after the longest key and its colon.
std::string RenderFields(const std::vector<std::pair<std::string, std::string>>& fields);

// "k1=v1,k2=v2" in key order, or "<none>".
std::string LabelsText(const boost::json::value& labels);
// A scalar as a table cell: strings as is, null/absent as "<none>".
std::string CellText(const boost::json::object& object, std::string_view key);

// ID NAME ENVIRONMENT ISOLATION STATE LABELS VERSION, one row per store.
std::string StoresTable(const boost::json::array& stores);

}  // namespace storeplane::cli
