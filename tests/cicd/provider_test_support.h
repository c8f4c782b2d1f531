// Helpers shared by the CI/CD adapter tests: a temporary directory for credential files, the
// sample run every test triggers, building a provider that must be valid, and JSON parsing.
#pragma once

#include <boost/json/value.hpp>
#include <filesystem>
#include <memory>
#include <string>

#include "cicd/provider.h"

namespace storeplane::cicd::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // Writes `content` to a file named `name` in the directory and returns its path.
  std::string Write(const std::string& name, const std::string& content) const;

 private:
  std::filesystem::path path_;
};

inline constexpr const char* kCorrelationId = "run_0123abcd";

// correlation id kCorrelationId, store "store-1", environment "production", isolation
// "dedicated", kind "deploy", release "2026.12.04-1", callback "https://plane.example/hooks/cicd/<name>".
TriggerRequest SampleRequest(const std::string& provider_name = "ci");

// The provider, or a test failure naming the error (and nullptr).
std::unique_ptr<Provider> MustMake(const ProviderConfig& config);

// The JSON value of `text`; a test failure and null when it does not parse.
boost::json::value Json(const std::string& text);

}  // namespace storeplane::cicd::testing
