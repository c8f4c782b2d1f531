// The one libcurl exchange the CI/CD adapters share: blocking, a fresh handle per call (so an
// adapter may be used from several worker threads), a timeout on every call, an optional CA
// bundle, never a redirect, and the answer's status, headers and (bounded) body captured.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace storeplane::cicd {

struct HttpCall {
  std::string method = "GET";
  std::string url;  // absolute; never carries a credential (those go in headers or the body)
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct HttpAnswer {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased; the last value wins
  std::string body;

  std::string Header(std::string_view lower_name) const;
};

struct HttpOptions {
  std::string ca_file;  // PEM bundle to trust; empty = the system's
  long timeout_ms = 10'000;
};

// The most an answer body may hold; a longer one is a transport failure.
inline constexpr std::size_t kMaxAnswerBytes = 8 * 1024 * 1024;

// Any HTTP status is an answer. A transport failure (refused, unresolvable, TLS, timeout, a
// body over kMaxAnswerBytes) is kUnavailable; its message names the host and libcurl's
// reason, never the request's headers or body.
Result<HttpAnswer> Exchange(const HttpOptions& options, const HttpCall& call);

}  // namespace storeplane::cicd
