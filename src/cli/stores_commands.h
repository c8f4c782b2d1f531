// The API commands of the operator CLI (`stores list|get|register|label`, `whoami`), the
// session that sends their requests, and the pure helpers they use (label edits, query
// strings), kept apart so they can be tested without a server. Commands run on the calling
// thread, print results to CliState::out and exactly one error line to CliState::err, and
// return an ExitCode (cli/output.h).
#pragma once

#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/cli_config.h"
#include "client/http_client.h"
#include "core/result.h"
#include "core/store.h"

namespace CLI {
class App;
}

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

void AddStoresCommands(CLI::App& root, CliState& state);
void AddWhoamiCommand(CLI::App& root, CliState& state);

// Sends requests to the API on behalf of one command: base URL, bearer token, timeout, TLS.
class ApiSession {
 public:
  explicit ApiSession(CliConfig config);
  // `path` starts with "/v1/"; a body is sent as application/json unless `headers`
  // names another Content-Type. Transport failures come back as kUnavailable.
  Result<client::HttpResponse> Call(const std::string& method, const std::string& path, const std::string& body = {},
                                    std::vector<std::pair<std::string, std::string>> headers = {});
  const CliConfig& config() const { return config_; }

 private:
  CliConfig config_;
  client::HttpClient http_;
};

// RFC 3986 percent-encoding of everything but unreserved characters.
std::string PercentEncode(std::string_view text);

struct ListFilters {
  std::string environment;
  std::string isolation_mode;
  std::string state;
  std::string selector;
  int limit = 0;  // 0: server default
};
// "/v1/stores" plus a query string of the filters that are set, and the cursor if any.
std::string StoresListPath(const ListFilters& filters, const std::string& cursor);

// kubectl-style label arguments: "k=v" sets, "k-" removes.
struct LabelEdit {
  core::Labels set;
  std::vector<std::string> remove;
};
// kInvalidArgument for anything else, an empty key, or a key both set and removed.
Result<LabelEdit> ParseLabelEdit(const std::vector<std::string>& args);
// "k=v" pairs for `register -l`; kInvalidArgument on bad syntax or a repeated key.
Result<core::Labels> ParseLabelPairs(const std::vector<std::string>& args);

struct LabelOutcome {
  core::Labels labels;  // the full resulting set
  bool changed = false;
  std::vector<std::string> missing;  // removals of keys that were not there
};
// kConflict when a set would change an existing value and `overwrite` is false.
Result<LabelOutcome> ApplyLabelEdit(const core::Labels& current, const LabelEdit& edit, bool overwrite);

}  // namespace storeplane::cli
