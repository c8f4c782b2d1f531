// Shell completion (`storeplane completion bash`): the script is generated from the CLI's
// own command tree, and these tests hold it to what `storeplane --help` shows at every
// level, by running the generated script in a real bash the way bash's `complete -F` does.
#include <gtest/gtest.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli_test_support.h"
#include "cli/completion.h"

namespace storeplane::cli {
namespace {

using storeplane::testing::CliRun;
using storeplane::testing::Lines;
using storeplane::testing::RunCli;
using storeplane::testing::TempDir;

std::set<std::string> Words(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string w; in >> w;) out.insert(w);
  return out;
}

std::string Quote(const std::string& word) {
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs the completion function of `script` for the command line `words` (the last word is
// the one being completed) and returns COMPREPLY, one word per line.
std::string Complete(const std::string& script, const std::vector<std::string>& words) {
  std::string cmd = "bash --norc --noprofile -c " +
                    Quote("source " + script + " && COMP_WORDS=(\"$@\") && COMP_CWORD=$(($# - 1)) && " +
                          "_storeplane && printf '%s\\n' \"${COMPREPLY[@]}\"") +
                    " bash";
  for (const auto& w : words) cmd += " " + Quote(w);
  std::string out;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  ::pclose(pipe);
  return out;
}

struct HelpLevel {
  std::set<std::string> options;      // every name, e.g. -o and --output
  std::set<std::string> subcommands;  // visible subcommands
};

// The "Options:" and "Subcommands:" sections of CLI11's --help.
HelpLevel ParseHelp(const std::string& help) {
  HelpLevel level;
  std::string section;
  for (const auto& line : Lines(help)) {
    if (line.empty()) {
      section.clear();
      continue;
    }
    if (line[0] != ' ') {
      section = line;
      continue;
    }
    if (line.size() < 3 || line[1] != ' ' || line[2] == ' ') continue;  // a wrapped description
    std::istringstream in(line);
    std::string first;
    in >> first;
    if (section == "Options:") {
      std::istringstream names(first);
      for (std::string name; std::getline(names, name, ',');) level.options.insert(name);
    } else if (section == "Subcommands:") {
      level.subcommands.insert(first);
    }
  }
  return level;
}

TEST(CliCompletion, ScriptNamesSubcommandsFlagsAndChoicesButNotHiddenCommands) {
  CLI::App app{"demo", "demo"};
  std::string out, file, name;
  bool flag = false;
  app.add_option("-o,--output", out)->check(CLI::IsMember({"table", "json"}));
  CLI::App* things = app.add_subcommand("things", "Things");
  CLI::App* list = things->add_subcommand("list", "List");
  list->add_flag("--all", flag);
  list->add_option("--token-file", file);
  list->add_option("name", name);
  app.add_subcommand("secret", "hidden")->group("");
  const auto script = BashCompletionScript(app);
  EXPECT_NE(script.find("\"\") echo 'things'"), std::string::npos) << script;
  EXPECT_NE(script.find("\"things\") echo 'list'"), std::string::npos) << script;
  EXPECT_NE(script.find("\"things list\") echo '-h --help --all --token-file -o --output'"), std::string::npos)
      << script;
  EXPECT_NE(script.find("\"things list|--output\") echo 'table json'"), std::string::npos) << script;
  EXPECT_NE(script.find("\"things list|--token-file\") echo '@file'"), std::string::npos) << script;
  EXPECT_EQ(script.find("things list|--all"), std::string::npos) << "a flag takes no value";
  EXPECT_EQ(script.find("secret"), std::string::npos) << script;
  EXPECT_NE(script.find("complete -F _demo demo"), std::string::npos);
}

// Every level of `storeplane --help`: completing a word offers exactly the subcommands it
// lists, and completing "-" offers exactly its flags and those of the levels above it
// (global flags are accepted after subcommands). A new command or flag that the script
// did not offer would fail here; since the script is generated, it cannot.
TEST(CliCompletion, OffersExactlyWhatHelpListsAtEveryLevel) {
  TempDir dir;
  const std::string script = dir.path() + "/storeplane.bash";
  const CliRun generated = RunCli({"completion", "bash"});
  ASSERT_EQ(generated.exit_code, 0) << generated;
  std::ofstream(script) << generated.out;

  struct Pending {
    std::vector<std::string> path;
    std::set<std::string> inherited_options;
  };
  std::vector<Pending> todo{{{}, {}}};
  int levels = 0;
  while (!todo.empty()) {
    const Pending level = todo.back();
    todo.pop_back();
    ++levels;
    auto args = level.path;
    args.push_back("--help");
    const CliRun help_run = RunCli(args);
    ASSERT_EQ(help_run.exit_code, 0) << help_run;
    const HelpLevel help = ParseHelp(help_run.out);
    ASSERT_TRUE(help.options.contains("--help")) << help_run.out;

    std::vector<std::string> words{"storeplane"};
    words.insert(words.end(), level.path.begin(), level.path.end());
    std::string where = "storeplane";
    for (const auto& p : level.path) where += " " + p;

    words.push_back("");
    EXPECT_EQ(Words(Complete(script, words)), help.subcommands) << "subcommands of `" << where << "`";
    words.back() = "-";
    std::set<std::string> expected = help.options;
    expected.insert(level.inherited_options.begin(), level.inherited_options.end());
    EXPECT_EQ(Words(Complete(script, words)), expected) << "flags of `" << where << "`";

    for (const auto& sub : help.subcommands) {
      auto path = level.path;
      path.push_back(sub);
      todo.push_back({path, expected});
    }
  }
  EXPECT_GT(levels, 30) << "the walk should reach every command";
}

TEST(CliCompletion, CompletesChoicesFilesAndSkipsOptionValues) {
  TempDir dir;
  const std::string script = dir.path() + "/storeplane.bash";
  const CliRun generated = RunCli({"completion", "bash"});
  ASSERT_EQ(generated.exit_code, 0) << generated;
  std::ofstream(script) << generated.out;
  std::ofstream(dir.path() + "/admin.token") << "x";

  EXPECT_EQ(Words(Complete(script, {"storeplane", "-o", ""})), (std::set<std::string>{"table", "json", "yaml"}));
  EXPECT_EQ(Words(Complete(script, {"storeplane", "stores", "list", "--isolation-mode", "d"})),
            (std::set<std::string>{"dedicated"}));
  EXPECT_EQ(Words(Complete(script, {"storeplane", "--token-file", dir.path() + "/adm"})),
            (std::set<std::string>{dir.path() + "/admin.token"}));
  // A value is not a subcommand: `--server stores` does not enter `stores`.
  EXPECT_EQ(Words(Complete(script, {"storeplane", "--server", "http://x", "sto"})), (std::set<std::string>{"stores"}));
  EXPECT_EQ(Words(Complete(script, {"storeplane", "-o", "json", "stores", "reg"})),
            (std::set<std::string>{"register"}));
  // A free-form value completes to nothing.
  EXPECT_EQ(Complete(script, {"storeplane", "stores", "register", "x", "--name", ""}), "\n");
  // The hidden command is not offered.
  EXPECT_FALSE(Words(Complete(script, {"storeplane", ""})).contains("completion"));
}

}  // namespace
}  // namespace storeplane::cli
