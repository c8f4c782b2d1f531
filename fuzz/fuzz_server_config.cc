// The server configuration (src/server/config.h): the YAML file, STOREPLANE_* environment
// variables, then Validate(). Input: lines "NAME=value" up to a line "---" (NAME gets the
// STOREPLANE_ prefix when it lacks it), then the YAML file (the rest). Without a "---"
// line the whole input is the YAML file.
// Property: SqlitePath()/SigningKeyPath() of a valid configuration are never empty.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "fuzz_support.h"
#include "server/config.h"

using namespace storeplane;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::ScratchFile file("server-config");
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::map<std::string, std::string> env;
  std::string_view yaml = input;
  if (const auto sep = input.find("\n---\n");
      sep != std::string_view::npos && input.substr(0, sep).find(": ") == std::string_view::npos) {
    fuzz::Reader lines(data, sep);
    while (!lines.empty()) {
      const auto line = lines.Line();
      const auto eq = line.find('=');
      std::string name(line.substr(0, eq));
      if (!name.starts_with("STOREPLANE_")) name = "STOREPLANE_" + name;
      env[name] = eq == std::string_view::npos ? "" : std::string(line.substr(eq + 1));
    }
    yaml = input.substr(sep + 5);
  }
  server::Config config;
  const auto& path = file.Write(yaml);
  if (!server::MergeYamlFile(path, config).ok()) return 0;
  if (!server::MergeEnvironment(env, config).ok()) return 0;
  if (!server::Validate(config).ok()) return 0;
  if (config.SqlitePath().empty() || config.SigningKeyPath().empty()) __builtin_trap();
  return 0;
}
