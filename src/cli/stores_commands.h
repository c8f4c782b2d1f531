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

#include "cli/command_support.h"
#include "core/result.h"
#include "core/store.h"

namespace CLI {
class App;
}

namespace storeplane::cli {

void AddStoresCommands(CLI::App& root, CliState& state);
void AddWhoamiCommand(CLI::App& root, CliState& state);

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
