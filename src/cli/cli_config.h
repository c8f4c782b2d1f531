// Where the operator CLI connects and as whom: global flags, environment variables and the
// config file, resolved with precedence flags > environment > config file > defaults.
// The environment is passed in (a lookup function) so the rules are testable; the token is
// carried in CliConfig only and is never printed.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace storeplane::cli {

inline constexpr std::string_view kDefaultServer = "http://127.0.0.1:8750";

enum class OutputFormat { kTable, kJson, kYaml };
std::optional<OutputFormat> ParseOutputFormat(std::string_view text);

// The global flags as given on the command line; unset optionals were not given.
struct GlobalFlags {
  std::optional<std::string> server;
  std::optional<std::string> token;
  std::optional<std::string> token_file;
  std::optional<std::string> ca_file;
  bool insecure = false;
  std::string output = "table";
  int timeout_seconds = 30;
};

// Returns the value of an environment variable, or nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup ProcessEnvironment();

struct CliConfig {
  std::string server;  // base URL without a trailing '/'
  std::string token;   // empty: send no Authorization header
  std::string ca_file;
  bool insecure = false;
  OutputFormat output = OutputFormat::kTable;
  long timeout_ms = 30000;
};

// $STOREPLANE_CONFIG, else ~/.config/storeplane/config.yaml ($XDG_CONFIG_HOME honoured);
// empty when neither HOME nor XDG_CONFIG_HOME is set.
std::string ConfigFilePath(const EnvLookup& env);

// Applies the precedence rules. For the token, each level is consulted in turn and the first
// level holding a token or a token file wins (a literal token beats a file on the same
// level). Errors (kInvalidArgument) name the problem: an unreadable config or token file,
// a server URL that is not http(s), a bad output format or timeout.
Result<CliConfig> ResolveConfig(const GlobalFlags& flags, const EnvLookup& env);

}  // namespace storeplane::cli
