#include "cli/cli_config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

namespace storeplane::cli {
namespace {

struct FileSettings {
  std::optional<std::string> server;
  std::optional<std::string> token;
  std::optional<std::string> token_file;
  std::optional<std::string> ca_file;
};

std::string TrimSpace(std::string s) {
  const char* ws = " \t\r\n";
  auto begin = s.find_first_not_of(ws);
  if (begin == std::string::npos) return {};
  auto end = s.find_last_not_of(ws);
  return s.substr(begin, end - begin + 1);
}

std::optional<std::string> NonEmpty(std::optional<std::string> value) {
  if (value && value->empty()) return std::nullopt;
  return value;
}

Result<FileSettings> LoadConfigFile(const std::string& path, bool must_exist) {
  FileSettings settings;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (must_exist) return Error::Invalid("config file " + path + " does not exist", "STOREPLANE_CONFIG");
    return settings;
  }
  try {
    YAML::Node root = YAML::LoadFile(path);
    if (root.IsNull()) return settings;
    if (!root.IsMap()) return Error::Invalid("config file " + path + " is not a YAML mapping");
    auto read = [&](const char* key) -> std::optional<std::string> {
      YAML::Node node = root[key];
      if (!node || node.IsNull()) return std::nullopt;
      if (!node.IsScalar()) throw YAML::Exception(node.Mark(), std::string(key) + " must be a string");
      return node.as<std::string>();
    };
    settings.server = read("server");
    settings.token = read("token");
    settings.token_file = read("token_file");
    settings.ca_file = read("ca_file");
    // A relative token or CA file in the config file is relative to the file itself.
    auto base = std::filesystem::path(path).parent_path();
    for (auto* p : {&settings.token_file, &settings.ca_file}) {
      if (*p && !(*p)->empty() && std::filesystem::path(**p).is_relative()) *p = (base / **p).string();
    }
  } catch (const YAML::Exception& e) {
    return Error::Invalid("cannot read config file " + path + ": " + e.what());
  }
  return settings;
}

Result<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::Invalid("cannot read token file " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  std::string token = TrimSpace(buffer.str());
  if (token.empty()) return Error::Invalid("token file " + path + " is empty");
  return token;
}

}  // namespace

std::optional<OutputFormat> ParseOutputFormat(std::string_view text) {
  if (text == "table") return OutputFormat::kTable;
  if (text == "json") return OutputFormat::kJson;
  if (text == "yaml") return OutputFormat::kYaml;
  return std::nullopt;
}

EnvLookup ProcessEnvironment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

std::string ConfigFilePath(const EnvLookup& env) {
  if (auto explicit_path = NonEmpty(env("STOREPLANE_CONFIG"))) return *explicit_path;
  if (auto xdg = NonEmpty(env("XDG_CONFIG_HOME"))) return *xdg + "/storeplane/config.yaml";
  if (auto home = NonEmpty(env("HOME"))) return *home + "/.config/storeplane/config.yaml";
  return {};
}

Result<CliConfig> ResolveConfig(const GlobalFlags& flags, const EnvLookup& env) {
  CliConfig config;

  auto format = ParseOutputFormat(flags.output);
  if (!format)
    return Error::Invalid("output format must be table, json or yaml, not \"" + flags.output + "\"", "output");
  config.output = *format;
  if (flags.timeout_seconds <= 0) return Error::Invalid("--timeout must be a positive number of seconds", "timeout");
  config.timeout_ms = static_cast<long>(flags.timeout_seconds) * 1000L;
  config.insecure = flags.insecure;

  FileSettings file;
  std::string path = ConfigFilePath(env);
  if (!path.empty()) {
    bool must_exist = NonEmpty(env("STOREPLANE_CONFIG")).has_value();
    auto loaded = LoadConfigFile(path, must_exist);
    if (!loaded) return loaded.error();
    file = std::move(loaded.value());
  }

  // Server and CA file: first level that sets them.
  auto first = [](std::initializer_list<std::optional<std::string>> levels) -> std::optional<std::string> {
    for (const auto& level : levels) {
      if (level && !level->empty()) return level;
    }
    return std::nullopt;
  };
  config.server = first({flags.server, env("STOREPLANE_ADDR"), file.server}).value_or(std::string(kDefaultServer));
  while (!config.server.empty() && config.server.back() == '/') config.server.pop_back();
  if (config.server.rfind("http://", 0) != 0 && config.server.rfind("https://", 0) != 0) {
    return Error::Invalid("server address must start with http:// or https://, not \"" + config.server + "\"",
                          "server");
  }
  config.ca_file = first({flags.ca_file, env("STOREPLANE_CA_FILE"), file.ca_file}).value_or("");

  // Token: per level, a literal token beats a token file; the first level with either wins.
  struct Level {
    std::optional<std::string> token;
    std::optional<std::string> token_file;
  };
  const Level levels[] = {
      {NonEmpty(flags.token), NonEmpty(flags.token_file)},
      {NonEmpty(env("STOREPLANE_TOKEN")), NonEmpty(env("STOREPLANE_TOKEN_FILE"))},
      {NonEmpty(file.token), NonEmpty(file.token_file)},
  };
  for (const auto& level : levels) {
    if (level.token) {
      config.token = TrimSpace(*level.token);
      break;
    }
    if (level.token_file) {
      auto token = ReadTokenFile(*level.token_file);
      if (!token) return token.error();
      config.token = std::move(token.value());
      break;
    }
  }
  return config;
}

}  // namespace storeplane::cli
