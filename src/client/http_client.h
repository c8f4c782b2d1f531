// A small blocking HTTP(S) client over libcurl, for the operator CLI and the tests.
// One HttpClient per thread (it owns a curl easy handle and reuses its connection).
// Transport failures are returned as an Error with kUnavailable; any HTTP status,
// including 4xx and 5xx, is a successful HttpResponse.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace storeplane::client {

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // absolute: http://127.0.0.1:8750/v1/stores
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  long timeout_ms = 30000;  // 0: no limit on the whole exchange (streams)
  // Streaming (Server-Sent Events): when set, a 2xx answer's body is handed here piece by
  // piece instead of being kept in HttpResponse::body (other answers are kept whole, for
  // their problem document); returning false ends the exchange, which is then not an
  // error. A stream that sends nothing for 60 s is cut off as unreachable.
  std::function<bool(std::string_view)> on_body;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // keys lower-cased; last value wins
  std::string body;

  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct ClientOptions {
  std::string ca_file;    // PEM bundle to verify the server; empty = system default
  bool insecure = false;  // skip TLS verification (explicit opt-in only)
};

class HttpClient {
 public:
  explicit HttpClient(ClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  Result<HttpResponse> Send(const HttpRequest& request);

 private:
  ClientOptions options_;
  void* curl_;  // CURL*
};

}  // namespace storeplane::client
