// Shell completion for the operator CLI, generated from the CLI's own command tree (CLI11),
// so it names exactly the subcommands and flags that `storeplane --help` shows at every
// level and cannot drift from them. `storeplane completion bash` prints the script; the
// build writes it to build/completion/storeplane and the packages install it.
#pragma once

#include <string>

#include "cli/command_support.h"

namespace CLI {
class App;
}

namespace storeplane::cli {

// Adds the hidden `completion SHELL` subcommand (SHELL: bash). Call it after every other
// command is registered; the script is generated from `root` when the command runs.
void AddCompletionCommand(CLI::App& root, CliState& state);

// The bash completion script for `root` (its name is the program name): subcommands and
// flags at every level (global flags too, as they are accepted after subcommands), the
// values of options with a fixed set of choices, and file names for options naming a file.
std::string BashCompletionScript(const CLI::App& root);

}  // namespace storeplane::cli
