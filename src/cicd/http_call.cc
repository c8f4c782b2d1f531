#include "cicd/http_call.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>

namespace storeplane::cicd {
namespace {

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct BodySink {
  std::string* body;
  bool too_large = false;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<BodySink*>(user);
  const size_t n = size * count;
  if (sink->body->size() + n > kMaxAnswerBytes) {
    sink->too_large = true;
    return 0;  // curl fails the transfer with CURLE_WRITE_ERROR
  }
  try {
    sink->body->append(data, n);
  } catch (...) {
    return 0;
  }
  return n;
}

std::string_view TrimLine(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// One call per header line; a new status line (an interim 100 answer) starts over.
size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  const std::string_view line(data, size * count);
  try {
    if (line.substr(0, 5) == "HTTP/") {
      headers->clear();
      return size * count;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return size * count;
    (*headers)[Lower(TrimLine(line.substr(0, colon)))] = std::string(TrimLine(line.substr(colon + 1)));
  } catch (...) {
    return 0;
  }
  return size * count;
}

// "host:port" of an absolute URL, for messages: never its path or query.
std::string HostOf(std::string_view url) {
  auto scheme_end = url.find("://");
  if (scheme_end != std::string_view::npos) url.remove_prefix(scheme_end + 3);
  const auto end = url.find_first_of("/?#");
  if (end != std::string_view::npos) url = url.substr(0, end);
  const auto at = url.rfind('@');
  if (at != std::string_view::npos) url.remove_prefix(at + 1);
  return std::string(url);
}

Error Unreachable(std::string_view url, std::string_view reason) {
  return Error{ErrorCode::kUnavailable, "cannot reach " + HostOf(url) + ": " + std::string(reason), {}};
}

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

}  // namespace

std::string HttpAnswer::Header(std::string_view lower_name) const {
  auto it = headers.find(std::string(lower_name));
  return it == headers.end() ? std::string() : it->second;
}

Result<HttpAnswer> Exchange(const HttpOptions& options, const HttpCall& call) {
  GlobalInitOnce();
  try {
    std::unique_ptr<CURL, CurlDeleter> handle(curl_easy_init());
    if (!handle) return Unreachable(call.url, "libcurl could not be initialised");
    CURL* curl = handle.get();

    HttpAnswer answer;
    BodySink sink{&answer.body};
    char error_buffer[CURL_ERROR_SIZE] = {0};
    const long timeout_ms = std::max(1L, options.timeout_ms);

    curl_easy_setopt(curl, CURLOPT_URL, call.url.c_str());
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, std::min(timeout_ms, 10'000L));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &answer.headers);
    if (!options.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options.ca_file.c_str());

    if (call.method == "GET") {
      curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else {
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, call.method.c_str());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, call.body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call.body.size()));
    }

    std::unique_ptr<curl_slist, SlistDeleter> header_list;
    auto append = [&header_list](const std::string& line) {
      curl_slist* next = curl_slist_append(header_list.get(), line.c_str());
      if (next == nullptr) return false;
      if (!header_list) header_list.reset(next);  // later appends return the same head
      return true;
    };
    for (const auto& [name, value] : call.headers) {
      if (!append(name + ": " + value)) return Unreachable(call.url, "out of memory building headers");
    }
    // No "Expect: 100-continue" round trip for larger bodies; no default Accept either.
    if (!append("Expect:")) return Unreachable(call.url, "out of memory building headers");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, header_list.get());

    const CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
      if (sink.too_large) return Unreachable(call.url, "the answer is larger than the allowed size");
      const std::string reason(
          TrimLine(error_buffer[0] != '\0' ? std::string_view(error_buffer) : curl_easy_strerror(rc)));
      return Unreachable(call.url, reason);
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &answer.status);
    return answer;
  } catch (const std::exception& e) {
    return Unreachable(call.url, e.what());
  } catch (...) {
    return Unreachable(call.url, "unexpected error");
  }
}

}  // namespace storeplane::cicd
