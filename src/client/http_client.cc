#include "client/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <string_view>

namespace storeplane::client {
namespace {

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* out = static_cast<std::string*>(user);
  try {
    out->append(data, size * count);
  } catch (...) {
    return 0;  // makes curl fail with CURLE_WRITE_ERROR
  }
  return size * count;
}

// Where a streaming exchange's body goes: to the caller once the status is 2xx.
struct BodySink {
  CURL* curl;
  std::string* kept;
  const std::function<bool(std::string_view)>* on_body;
  bool stopped = false;
};

size_t OnStreamBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<BodySink*>(user);
  long status = 0;
  curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &status);
  try {
    if (status < 200 || status > 299) {
      if (sink->kept->size() < (1U << 20)) sink->kept->append(data, size * count);
      return size * count;
    }
    if (!(*sink->on_body)(std::string_view(data, size * count))) {
      sink->stopped = true;
      return 0;
    }
  } catch (...) {
    return 0;
  }
  return size * count;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// Called once per header line; a new status line (redirects, 100-continue) resets the map.
size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string_view line(data, size * count);
  try {
    if (line.substr(0, 5) == "HTTP/") {
      headers->clear();
      return size * count;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return size * count;
    std::string name(Trim(line.substr(0, colon)));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    (*headers)[name] = std::string(Trim(line.substr(colon + 1)));
  } catch (...) {
    return 0;
  }
  return size * count;
}

Error Unreachable(const std::string& url, std::string_view message) {
  return Error{ErrorCode::kUnavailable, "cannot reach " + url + ": " + std::string(message), {}};
}

}  // namespace

HttpClient::HttpClient(ClientOptions options) : options_(std::move(options)) {
  GlobalInitOnce();
  curl_ = curl_easy_init();
}

HttpClient::~HttpClient() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

Result<HttpResponse> HttpClient::Send(const HttpRequest& request) {
  if (curl_ == nullptr) return Unreachable(request.url, "libcurl could not be initialised");
  try {
    CURL* curl = static_cast<CURL*>(curl_);
    curl_easy_reset(curl);  // keeps the connection cache, clears per-request options

    HttpResponse response;
    char error_buffer[CURL_ERROR_SIZE] = {0};

    curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, request.timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     request.timeout_ms > 0 ? std::min<long>(request.timeout_ms, 10000L) : 10000L);
    BodySink sink{curl, &response.body, &request.on_body};
    if (request.on_body) {
      curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnStreamBody);
      curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
      curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
      curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
    } else {
      curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
      curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
    }
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response.headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "storeplane/0.1");

    if (!options_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
    if (options_.insecure) {
      curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }

    const std::string& method = request.method;
    if (method == "GET") {
      curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else if (method == "HEAD") {
      curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else {
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    }
    if (method != "GET" && method != "HEAD" &&
        (!request.body.empty() || method == "POST" || method == "PUT" || method == "PATCH")) {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    }

    curl_slist* header_list = nullptr;
    bool has_expect = false;
    for (const auto& [name, value] : request.headers) {
      std::string line = name + ": " + value;
      std::string lower = name;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (lower == "expect") has_expect = true;
      curl_slist* next = curl_slist_append(header_list, line.c_str());
      if (next == nullptr) {
        curl_slist_free_all(header_list);
        return Unreachable(request.url, "out of memory building headers");
      }
      header_list = next;
    }
    if (!has_expect) {
      // No "Expect: 100-continue" round trip for larger bodies.
      curl_slist* next = curl_slist_append(header_list, "Expect:");
      if (next != nullptr) header_list = next;
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, header_list);

    CURLcode rc = curl_easy_perform(curl);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
    curl_slist_free_all(header_list);
    if (rc == CURLE_WRITE_ERROR && sink.stopped) rc = CURLE_OK;  // the caller ended the stream
    if (rc != CURLE_OK) {
      std::string_view message =
          error_buffer[0] != '\0' ? std::string_view(error_buffer) : std::string_view(curl_easy_strerror(rc));
      std::string text(Trim(message));
      // The error buffer points into this frame: do not leave it installed.
      curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
      return Unreachable(request.url, text);
    }
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
    return response;
  } catch (const std::exception& e) {
    return Unreachable(request.url, e.what());
  } catch (...) {
    return Unreachable(request.url, "unexpected error");
  }
}

}  // namespace storeplane::client
