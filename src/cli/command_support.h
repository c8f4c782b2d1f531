// What every API command of the operator CLI shares: the per-command state (CliState), the
// session that sends requests (ApiSession), and the helpers that turn a response into output
// or into exactly one error line on stderr plus an exit code (cli/output.h).
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <functional>
#include <ostream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "cli/cli_config.h"
#include "client/http_client.h"
#include "core/result.h"

namespace storeplane::cli {

// Shared by main and the command registrations: where global flags land, the streams to
// print to, and the action chosen by the parsed subcommand (run after parsing).
struct CliState {
  GlobalFlags flags;
  EnvLookup env;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  std::function<int()> action;
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Sends requests to the API on behalf of one command: base URL, bearer token, timeout, TLS.
class ApiSession {
 public:
  explicit ApiSession(CliConfig config);
  // `path` starts with "/v1/"; a body is sent as application/json unless `headers`
  // names another Content-Type, and JSON is accepted unless `headers` names an Accept.
  // Transport failures come back as kUnavailable.
  Result<client::HttpResponse> Call(const std::string& method, const std::string& path, const std::string& body = {},
                                    HeaderList headers = {});
  const CliConfig& config() const { return config_; }

 private:
  CliConfig config_;
  client::HttpClient http_;
};

// RFC 3986 percent-encoding of everything but unreserved characters.
std::string PercentEncode(std::string_view text);
// `path` plus "?k=v&..." for the pairs given, values percent-encoded; empty values skipped.
std::string WithQuery(std::string path, const HeaderList& params);

// A 2xx reply whose body is a JSON object.
struct JsonReply {
  client::HttpResponse response;
  boost::json::value body;
};
// A call that failed: its one line is already on stderr; this is the exit code.
struct Failure {
  int exit_code = 1;
};

// One line for a transport failure; returns the exit code (6 for an unreachable server).
int ReportTransport(const CliState& state, const Error& error);
// One line from a non-2xx response's problem document; returns the exit code for its status.
int ReportProblem(const CliState& state, const client::HttpResponse& response);
// "storeplane: usage: <message>"; returns 2.
int UsageError(const CliState& state, const std::string& message);
// "storeplane: unexpected response: <message>"; returns 1.
int UnexpectedResponse(const CliState& state, const std::string& message);

// Sends a request and expects a 2xx JSON object back; on failure prints and returns the code.
std::variant<JsonReply, Failure> CallJson(const CliState& state, ApiSession& session, const std::string& method,
                                          const std::string& path, const std::string& body = {},
                                          HeaderList headers = {});

// Follows next_cursor through a listing (`path_for(cursor)`, cursor "" first) and appends the
// items of every page to `items` (only the first page unless `all`). Returns the last
// next_cursor (null when `all` finished) or the Failure already reported.
std::variant<boost::json::value, Failure> CollectPages(const CliState& state, ApiSession& session,
                                                       const std::function<std::string(const std::string&)>& path_for,
                                                       bool all, boost::json::array& items);

// A listing command end to end: collects pages (see CollectPages), prints
// {"items","next_cursor"} as JSON/YAML or `table(items)` (or `empty_text`), and in table
// mode names the flag that fetches the next page. Returns the exit code.
struct PagedListing {
  std::function<std::string(const std::string&)> path_for;
  bool all = false;
  std::string noun;         // "stores", "records": "storeplane: more <noun>: ..."
  std::string cursor_flag;  // "--cursor", "--after"
  std::string empty_text;   // "No stores found.\n"
  std::function<std::string(const boost::json::array&)> table;
};
int RunPagedListing(CliState& state, const PagedListing& listing);

// Resolves the configuration and runs `body` with a session; configuration errors exit 2.
int WithSession(CliState& state, const std::function<int(ApiSession&)>& body);

// Prints `value` as JSON or YAML, or calls `table` for the table format.
void Print(const CliState& state, OutputFormat format, const boost::json::value& value,
           const std::function<std::string()>& table);
inline OutputFormat FormatOf(const ApiSession& session) { return session.config().output; }

// Exit codes of the commands that wait for something to end (`ops run --wait`, `runs watch`,
// `deploy --wait`, ...), beyond those of cli/output.h; listed in the help footer.
inline constexpr int kExitWaitFailed = 9;     // it ended, and not well
inline constexpr int kExitWaitTimedOut = 10;  // the wait's --timeout passed before it ended

// The delay before poll number `attempt` (0, 1, ...) of a wait: 200 ms for the first five
// polls, then doubling up to 1 s.
int PollDelayMs(int attempt);

// What a wait saw last, and whether its timeout passed before `done` held.
struct Polled {
  boost::json::object last;
  bool timed_out = false;
};
// Polls GET `path` (PollDelayMs apart) from `current` on until `done(object)` holds or
// `timeout_s` seconds have passed; `current` is not fetched again when `done` already holds.
// `on_poll` sees every object fetched. A reply naming another "id" than `current` is an
// unexpected response. Failures are reported (one line) and returned.
std::variant<Polled, Failure> PollUntil(const CliState& state, ApiSession& session, const std::string& path,
                                        boost::json::object current, int timeout_s,
                                        const std::function<bool(const boost::json::object&)>& done,
                                        const std::function<void(const boost::json::object&)>& on_poll = {});

// Runs a command, turning any escaped exception into exit 1 with one line.
std::function<int()> Guarded(CliState& state, std::function<int()> run);

}  // namespace storeplane::cli
