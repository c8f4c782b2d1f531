// shop-agent: runs beside one Magento store, dials out to storeplaned, reports health and
// runs the allow-listed operations of the catalog as fixed argv without a shell.
#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>
#include <thread>

#include <pthread.h>

#include "agent/agent_config.h"
#include "agent/agent_log.h"
#include "agent/agent_loop.h"
#include "agent/stop_signal.h"

namespace {

constexpr const char* kFooter = R"(The configuration file is YAML (see config/shop-agent.example.yaml); unknown keys are
refused. Without a credential file the agent enrolls once with the token from
enrollment_token_file or SHOP_AGENT_ENROLLMENT_TOKEN and stores the credential (0600).
Proxies: the standard lowercase http_proxy, https_proxy and no_proxy variables are honoured
(HTTPS_PROXY and NO_PROXY too). Logs are JSON lines on stderr. SIGTERM/SIGINT stop it.

Exit codes:
  0  stopped by SIGTERM or SIGINT
  1  local state unusable (state_dir, journal, credential file)
  2  usage or configuration error ("shop-agent: <file>:<line>: <problem>"), no enrollment token
  3  enrollment refused by the control plane (a bad token does not get better)
)";

int Run(int argc, char** argv) {
  using namespace storeplane::agent;
  CLI::App app{"shop-agent: the storeplane agent beside a Magento store", "shop-agent"};
  app.footer(kFooter);
  std::string config_path;
  bool version = false;
  app.add_option("-c,--config", config_path, "YAML configuration file");
  app.add_flag("--version", version, "Print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);  // --help
    std::cerr << "shop-agent: " << e.what() << " (see shop-agent --help)" << std::endl;
    return kExitUsage;
  }
  if (version) {
    std::cout << "shop-agent " << kAgentVersion << std::endl;
    return kExitOk;
  }
  if (config_path.empty()) {
    std::cerr << "shop-agent: --config FILE is required (see shop-agent --help)" << std::endl;
    return kExitUsage;
  }
  auto config = LoadAgentConfig(config_path);
  if (!config.ok()) {
    std::cerr << "shop-agent: " << config.error().message << std::endl;
    return kExitUsage;
  }

  // SIGTERM and SIGINT are taken by one thread with sigtimedwait; every other thread (and,
  // until they reset it, the commands) has them blocked.
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  StopSignal stop;
  std::atomic<bool> done{false};
  std::thread signal_thread([&] {
    while (!done.load()) {
      const timespec tick = {0, 200 * 1000 * 1000};
      const int sig = sigtimedwait(&stop_signals, nullptr, &tick);
      if (sig > 0) {
        Log(LogLevel::kInfo, "stop requested", {{"signal", std::string(sig == SIGTERM ? "SIGTERM" : "SIGINT")}});
        stop.Request();
        return;
      }
    }
  });
  const int code = RunAgent(*config, stop);
  done.store(true);
  signal_thread.join();
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "shop-agent: unexpected error: " << e.what() << std::endl;
  }
  return storeplane::agent::kExitFailure;
}
