#include "cicd/provider.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/url/parse.hpp>
#include <cctype>

#include "cicd/adapter_support.h"
#include "cicd/buildbot_provider.h"
#include "cicd/github_provider.h"
#include "cicd/gitlab_provider.h"
#include "cicd/jenkins_provider.h"
#include "cicd/webhook_provider.h"

namespace storeplane::cicd {
namespace {

constexpr long kMaxTimeoutMs = 10 * 60 * 1000;

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (const char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

// The base URL without a trailing slash, or the reason it is refused.
Result<std::string> CheckBaseUrl(const std::string& text) {
  auto parsed = boost::urls::parse_absolute_uri(text);
  if (parsed.has_error()) return Error::Invalid("base_url is not an absolute URL", "base_url");
  if (parsed->scheme() != "http" && parsed->scheme() != "https") {
    return Error::Invalid("base_url must be an http or https URL", "base_url");
  }
  if (parsed->encoded_host().empty()) return Error::Invalid("base_url has no host", "base_url");
  if (parsed->has_userinfo()) {
    // Never echo it: it may hold a password.
    return Error::Invalid("base_url must not carry credentials; use token_file or token_env", "base_url");
  }
  if (parsed->has_query() || parsed->has_fragment()) {
    return Error::Invalid("base_url must not have a query or a fragment", "base_url");
  }
  std::string url = text;
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

Status CheckReadable(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return Error::Invalid("ca_file " + path + " cannot be opened", "ca_file");
  ::close(fd);
  return Status::Ok();
}

}  // namespace

std::string_view ToString(ProviderRunStatus status) {
  switch (status) {
    case ProviderRunStatus::kNotFound: return "not_found";
    case ProviderRunStatus::kQueued: return "queued";
    case ProviderRunStatus::kRunning: return "running";
    case ProviderRunStatus::kSucceeded: return "succeeded";
    case ProviderRunStatus::kFailed: return "failed";
    case ProviderRunStatus::kCancelled: return "cancelled";
  }
  return "unknown";
}

Result<std::unique_ptr<Provider>> MakeProvider(const ProviderConfig& config) {
  if (!IsValidName(config.name)) {
    return Error::Invalid("a provider name is 1 to 64 of [A-Za-z0-9._-]", "name");
  }
  const std::string& type = config.type;
  if (type != "webhook" && type != "github" && type != "gitlab" && type != "jenkins" && type != "buildbot") {
    return Error::Invalid("provider \"" + config.name + "\": type must be webhook, github, gitlab, jenkins or buildbot",
                          "type");
  }
  auto prefix = [&config](Error error) {
    error.message = config.type + " provider \"" + config.name + "\": " + error.message;
    return error;
  };
  auto base_url = CheckBaseUrl(config.base_url);
  if (!base_url.ok()) return prefix(base_url.error());
  if (config.timeout_ms <= 0 || config.timeout_ms > kMaxTimeoutMs) {
    return prefix(Error::Invalid("timeout_ms must be between 1 and 600000", "timeout_ms"));
  }
  if (!config.ca_file.empty()) {
    if (auto readable = CheckReadable(config.ca_file); !readable.ok()) return prefix(readable.error());
  }

  AdapterBasics basics;
  basics.name = config.name;
  basics.type = config.type;
  basics.base_url = std::move(*base_url);
  basics.http.ca_file = config.ca_file;
  basics.http.timeout_ms = config.timeout_ms;

  Result<std::unique_ptr<Provider>> made = Error::Internal("unreachable");
  if (type == "webhook") {
    made = MakeWebhookProvider(std::move(basics), config);
  } else if (type == "github") {
    made = MakeGithubProvider(std::move(basics), config);
  } else if (type == "gitlab") {
    made = MakeGitlabProvider(std::move(basics), config);
  } else if (type == "jenkins") {
    made = MakeJenkinsProvider(std::move(basics), config);
  } else {
    made = MakeBuildbotProvider(std::move(basics), config);
  }
  if (!made.ok()) return prefix(made.error());
  return made;
}

}  // namespace storeplane::cicd
