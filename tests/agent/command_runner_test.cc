// The process runner: argv reaches the program literally (no shell), the environment is
// minimal, deadlines and the output cap kill the whole process group, and a stop request
// kills the command.
#include "agent/command_runner.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "agent_test_support.h"

namespace storeplane::agent {
namespace {

using std::chrono::milliseconds;
using testing::ReadFile;
using testing::TempDir;

CommandSpec Spec(std::vector<std::string> argv, const std::string& cwd = "/") {
  CommandSpec spec;
  spec.argv = std::move(argv);
  spec.cwd = cwd;
  spec.timeout = milliseconds(10000);
  spec.max_output_bytes = 1 << 20;
  return spec;
}

// A process that exists and is not a zombie.
bool ProcessAlive(pid_t pid) {
  const std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return false;
  const auto close_paren = stat.rfind(')');
  return close_paren != std::string::npos && close_paren + 2 < stat.size() && stat[close_paren + 2] != 'Z';
}

TEST(CommandRunnerTest, ArgumentsReachTheProgramLiterally) {
  ProcessRunner runner;
  const std::vector<std::string> args = {"a b", "semi;colon", "$(id)",         "`id`", "'quoted'", "\"dq\"",
                                         "*",   "$HOME",      "x && rm -rf /", "|",    ""};
  std::vector<std::string> argv = {"/usr/bin/printf", "[%s]\\n"};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto result = runner.Run(Spec(argv));
  ASSERT_EQ(result.outcome, CommandOutcome::kExited);
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.output,
            "[a b]\n[semi;colon]\n[$(id)]\n[`id`]\n['quoted']\n[\"dq\"]\n[*]\n[$HOME]\n[x && rm -rf /]\n[|]\n[]\n");
}

TEST(CommandRunnerTest, RunsInTheGivenDirectoryWithStdinFromDevNull) {
  TempDir dir;
  ProcessRunner runner;
  const auto pwd = runner.Run(Spec({"/bin/pwd"}, dir.path().string()));
  ASSERT_EQ(pwd.outcome, CommandOutcome::kExited);
  EXPECT_EQ(pwd.output, dir.path().string() + "\n");
  const auto cat = runner.Run(Spec({"/bin/cat"}));  // would block on a terminal or a pipe
  ASSERT_EQ(cat.outcome, CommandOutcome::kExited);
  EXPECT_EQ(cat.output, "");
}

TEST(CommandRunnerTest, StdoutAndStderrShareOnePipe) {
  ProcessRunner runner;
  const auto result = runner.Run(Spec({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}));
  ASSERT_EQ(result.outcome, CommandOutcome::kExited);
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.output, "out\nerr\n");
}

TEST(CommandRunnerTest, EnvironmentIsMinimalAndNothingLeaksFromTheAgent) {
  ::setenv("SHOP_AGENT_ENROLLMENT_TOKEN", "spe_LEAK-CANARY-TOKEN", 1);
  ::setenv("LEAK_CANARY", "must-not-reach-the-child", 1);
  ProcessRunner runner;
  const auto result = runner.Run(Spec({"/usr/bin/env"}));
  ::unsetenv("SHOP_AGENT_ENROLLMENT_TOKEN");
  ::unsetenv("LEAK_CANARY");
  ASSERT_EQ(result.outcome, CommandOutcome::kExited);
  EXPECT_EQ(result.output, "PATH=/usr/local/bin:/usr/bin:/bin\nLANG=C\n");
}

TEST(CommandRunnerTest, NoDescriptorOfTheAgentIsInherited) {
  TempDir dir;
  const int leaked = ::open((dir / "open-file").c_str(), O_CREAT | O_WRONLY, 0600);  // no O_CLOEXEC
  ASSERT_GE(leaked, 3);
  ProcessRunner runner;
  // ls opens /proc/self/fd itself as descriptor 3.
  const auto result = runner.Run(Spec({"/bin/ls", "/proc/self/fd"}));
  ::close(leaked);
  ASSERT_EQ(result.outcome, CommandOutcome::kExited);
  EXPECT_EQ(result.output, "0\n1\n2\n3\n");
}

TEST(CommandRunnerTest, TimeoutKillsTheWholeProcessGroup) {
  TempDir dir;
  const std::string pid_file = dir / "grandchild.pid";
  ProcessRunner runner;
  auto spec = Spec({"/bin/sh", "-c", "sleep 600 & echo $! > '" + pid_file + "'; wait"});
  spec.timeout = milliseconds(700);
  const auto start = std::chrono::steady_clock::now();
  const auto result = runner.Run(spec);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(result.outcome, CommandOutcome::kTimeout);
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_GE(result.duration_ms, 700);
  const std::string pid_text = ReadFile(pid_file);
  ASSERT_FALSE(pid_text.empty());
  const pid_t grandchild = std::stoi(pid_text);
  // The grandchild got SIGKILL with its group: gone, or a zombie waiting for its new parent.
  for (int i = 0; i < 100 && ProcessAlive(grandchild); ++i) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_FALSE(ProcessAlive(grandchild));
}

TEST(CommandRunnerTest, TheCommandRunsInItsOwnProcessGroup) {
  ProcessRunner runner;
  // Field 5 of /proc/self/stat is the process group; the shell's pid is $$.
  const auto result = runner.Run(Spec({"/bin/sh", "-c", "read -r stat < /proc/$$/stat; set -- $stat; echo \"$1 $5\""}));
  ASSERT_EQ(result.outcome, CommandOutcome::kExited);
  std::istringstream fields(result.output);
  std::string pid;
  std::string pgid;
  fields >> pid >> pgid;
  EXPECT_EQ(pid, pgid);
  EXPECT_NE(pgid, std::to_string(::getpgrp()));
}

TEST(CommandRunnerTest, OutputBeyondTheCapKillsTheCommand) {
  ProcessRunner runner;
  auto spec = Spec({"/usr/bin/yes", "canary.customer@example.com"});
  spec.max_output_bytes = 4096;
  const auto result = runner.Run(spec);
  EXPECT_EQ(result.outcome, CommandOutcome::kOutputTooLarge);
  EXPECT_TRUE(result.output.empty());

  auto exact = Spec({"/usr/bin/head", "-c", "4096", "/dev/zero"});
  exact.max_output_bytes = 4096;
  const auto fits = runner.Run(exact);
  EXPECT_EQ(fits.outcome, CommandOutcome::kExited);
  EXPECT_EQ(fits.output.size(), 4096U);
}

TEST(CommandRunnerTest, SpawnFailures) {
  ProcessRunner runner;
  EXPECT_EQ(runner.Run(Spec({"/nonexistent/php", "bin/magento"})).outcome, CommandOutcome::kSpawnFailed);
  EXPECT_EQ(runner.Run(Spec({"/bin/true"}, "/nonexistent/dir")).outcome, CommandOutcome::kSpawnFailed);
  EXPECT_EQ(runner.Run(Spec({})).outcome, CommandOutcome::kSpawnFailed);
  // A relative name is not looked up in PATH (execve, not execvp).
  EXPECT_EQ(runner.Run(Spec({"true"})).outcome, CommandOutcome::kSpawnFailed);
}

TEST(CommandRunnerTest, KilledBySignalIsNotAnExit) {
  ProcessRunner runner;
  const auto result = runner.Run(Spec({"/bin/sh", "-c", "kill -9 $$"}));
  EXPECT_EQ(result.outcome, CommandOutcome::kSignaled);
}

TEST(CommandRunnerTest, StopRequestKillsTheRunningCommand) {
  StopSignal stop;
  ProcessRunner runner(&stop);
  std::thread stopper([&stop] {
    std::this_thread::sleep_for(milliseconds(300));
    stop.Request();
  });
  const auto start = std::chrono::steady_clock::now();
  const auto result = runner.Run(Spec({"/bin/sleep", "600"}));
  stopper.join();
  EXPECT_EQ(result.outcome, CommandOutcome::kStopped);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(CommandRunnerTest, BackgroundLeftoversDoNotHoldTheRunner) {
  // The main process exits at once but a background child keeps the pipe open: the runner
  // waits a short grace, then kills the group and reports the exit.
  ProcessRunner runner;
  const auto start = std::chrono::steady_clock::now();
  const auto result = runner.Run(Spec({"/bin/sh", "-c", "sleep 600 & echo done"}));
  EXPECT_EQ(result.outcome, CommandOutcome::kExited);
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.output, "done\n");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace storeplane::agent
