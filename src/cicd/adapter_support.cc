#include "cicd/adapter_support.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace storeplane::cicd {
namespace {

constexpr std::size_t kMaxCredentialBytes = 16 * 1024;
constexpr std::size_t kMaxSnippetChars = 160;

std::string_view TrimSpace(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())) != 0) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())) != 0) text.remove_suffix(1);
  return text;
}

// Printable ASCII only: a credential goes into a header line.
bool IsPrintable(std::string_view text) {
  for (const char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

Result<std::string> ReadSmallFile(std::string_view field, const std::string& path) {
  const std::string what = std::string(field) + "_file " + path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return Error::Invalid(what + " cannot be opened: " + std::strerror(errno), std::string(field) + "_file");
  }
  std::string text;
  std::array<char, 4096> buffer{};
  while (text.size() <= kMaxCredentialBytes) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string reason = std::strerror(errno);
      ::close(fd);
      return Error::Invalid(what + " cannot be read: " + reason, std::string(field) + "_file");
    }
    if (n == 0) break;
    text.append(buffer.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (text.size() > kMaxCredentialBytes) {
    return Error::Invalid(what + " is too large for a credential", std::string(field) + "_file");
  }
  return text;
}

bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// A short printable excerpt of a JSON error answer's message, or empty.
std::string ErrorSnippet(std::string_view body) {
  auto json = ParseJson(body);
  if (!json) return {};
  const boost::json::value* message = Field(&*json, "message");
  if (message == nullptr) {
    message = Field(&*json, "error");
    if (message != nullptr && message->is_object()) message = Field(message, "message");
  }
  if (message == nullptr) message = Field(&*json, "error_description");
  if (message == nullptr || message->is_null()) return {};
  std::string text = message->is_string() ? std::string(message->get_string()) : boost::json::serialize(*message);
  std::string out;
  for (const char c : text) {
    if (out.size() >= kMaxSnippetChars) {
      out += "...";
      break;
    }
    out += (c >= 0x20 && c <= 0x7e) ? c : ' ';
  }
  return std::string(TrimSpace(out));
}

}  // namespace

Result<std::string> ReadCredential(std::string_view field, const std::string& file, const std::string& env) {
  const std::string file_field = std::string(field) + "_file";
  const std::string env_field = std::string(field) + "_env";
  if (!file.empty() && !env.empty()) {
    return Error::Invalid("set " + file_field + " or " + env_field + ", not both", file_field);
  }
  std::string value;
  if (!file.empty()) {
    auto text = ReadSmallFile(field, file);
    if (!text.ok()) return text.error();
    value = std::string(TrimSpace(*text));
    if (value.empty()) return Error::Invalid(file_field + " " + file + " is empty", file_field);
    if (!IsPrintable(value)) {
      return Error::Invalid(file_field + " " + file + " does not hold a single-line credential", file_field);
    }
  } else if (!env.empty()) {
    const char* raw = std::getenv(env.c_str());
    value = raw == nullptr ? std::string() : std::string(TrimSpace(raw));
    if (value.empty()) return Error::Invalid(env_field + " " + env + " is not set or empty", env_field);
    if (!IsPrintable(value)) {
      return Error::Invalid(env_field + " " + env + " does not hold a single-line credential", env_field);
    }
  }
  return value;
}

Status CheckSettings(const std::map<std::string, std::string>& settings, std::string_view type,
                     std::initializer_list<std::string_view> required,
                     std::initializer_list<std::string_view> optional) {
  for (const auto key : required) {
    auto it = settings.find(std::string(key));
    if (it == settings.end() || TrimSpace(it->second).empty()) {
      return Error::Invalid(std::string(type) + " providers need settings." + std::string(key),
                            "settings." + std::string(key));
    }
  }
  for (const auto& [key, value] : settings) {
    bool known = false;
    for (const auto k : required) known = known || k == key;
    for (const auto k : optional) known = known || k == key;
    if (!known) {
      return Error::Invalid("settings." + key + " is not a setting of " + std::string(type) + " providers",
                            "settings." + key);
    }
    if (!IsPrintable(value)) return Error::Invalid("settings." + key + " holds control characters", "settings." + key);
  }
  return Status::Ok();
}

std::string Setting(const std::map<std::string, std::string>& settings, const std::string& key) {
  auto it = settings.find(key);
  return it == settings.end() ? std::string() : std::string(TrimSpace(it->second));
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0x0f];
    }
  }
  return out;
}

std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out += '&';
    out += PercentEncode(name);
    out += '=';
    out += PercentEncode(value);
  }
  return out;
}

bool ContainsToken(std::string_view text, std::string_view token) {
  if (token.empty()) return false;
  for (auto pos = text.find(token); pos != std::string_view::npos; pos = text.find(token, pos + 1)) {
    const bool starts = pos == 0 || !IsWordChar(text[pos - 1]);
    const auto end = pos + token.size();
    const bool ends = end == text.size() || !IsWordChar(text[end]);
    if (starts && ends) return true;
  }
  return false;
}

bool IsValidCorrelationId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (const char c : id) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

std::string Base64(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

bool IsDecimalId(std::string_view text) {
  if (text.empty() || text.size() > 18) return false;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::optional<boost::json::value> ParseJson(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(boost::json::string_view(text.data(), text.size()), ec);
  if (ec) return std::nullopt;
  return value;
}

const boost::json::value* Field(const boost::json::value* value, std::string_view key) {
  if (value == nullptr) return nullptr;
  const auto* object = value->if_object();
  if (object == nullptr) return nullptr;
  return object->if_contains(boost::json::string_view(key.data(), key.size()));
}

std::string Text(const boost::json::value* value) {
  if (value == nullptr) return {};
  if (const auto* s = value->if_string()) return std::string(*s);
  if (const auto* i = value->if_int64()) return std::to_string(*i);
  if (const auto* u = value->if_uint64()) return std::to_string(*u);
  return {};
}

std::optional<std::int64_t> Integer(const boost::json::value* value) {
  if (value == nullptr) return std::nullopt;
  if (const auto* i = value->if_int64()) return *i;
  if (const auto* u = value->if_uint64()) {
    if (*u > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<std::int64_t>(*u);
  }
  if (const auto* s = value->if_string(); s != nullptr && IsDecimalId(*s)) {
    std::int64_t n = 0;
    for (const char c : *s) n = n * 10 + (c - '0');
    return n;
  }
  return std::nullopt;
}

bool IsTrue(const boost::json::value* value) {
  if (value == nullptr) return false;
  const auto* b = value->if_bool();
  return b != nullptr && *b;
}

HttpAdapter::HttpAdapter(AdapterBasics basics, std::vector<std::string> secrets)
    : basics_(std::move(basics)), secrets_(std::move(secrets)) {}

std::string HttpAdapter::Who() const { return basics_.type + " provider \"" + basics_.name + "\""; }

std::string HttpAdapter::Redact(std::string text) const {
  for (const auto& secret : secrets_) {
    if (secret.empty()) continue;
    for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos)) {
      text.replace(pos, secret.size(), "[redacted]");
    }
  }
  return text;
}

Result<HttpAnswer> HttpAdapter::Send(std::string_view what, const HttpCall& call) const {
  auto answer = Exchange(basics_.http, call);
  if (!answer.ok()) {
    return Error{ErrorCode::kUnavailable, Redact(Who() + ": " + std::string(what) + ": " + answer.error().message), {}};
  }
  return answer;
}

Result<TriggerResult> HttpAdapter::Accepted(std::string_view what, const HttpAnswer& answer, std::string_view id_key,
                                            std::string_view url_key) const {
  if (answer.status < 200 || answer.status >= 300) return Refused(what, answer);
  TriggerResult result;
  if (auto json = ParseJson(answer.body); json && json->is_object()) {
    result.external_id = Text(Field(&*json, id_key));
    result.external_url = Text(Field(&*json, url_key));
  }
  return result;
}

Error HttpAdapter::Refused(std::string_view what, const HttpAnswer& answer) const {
  const long status = answer.status;
  const bool rate_limited =
      status == 429 ||
      (status == 403 && (!answer.Header("retry-after").empty() || answer.Header("x-ratelimit-remaining") == "0"));
  ErrorCode code = ErrorCode::kInvalidArgument;
  if (status >= 500 || rate_limited || status < 300) {
    code = ErrorCode::kUnavailable;
  } else if (status == 401 || status == 403) {
    code = ErrorCode::kPermissionDenied;
  }
  std::string message = Who() + ": " + std::string(what) + ": HTTP " + std::to_string(status);
  if (rate_limited) message += " (rate limited)";
  if (status >= 300 && status < 400) message += " (a redirect: base_url must be the API's own address)";
  const std::string snippet = ErrorSnippet(answer.body);
  if (!snippet.empty()) message += ": " + snippet;
  return Error{code, Redact(std::move(message)), {}};
}

Error HttpAdapter::Malformed(std::string_view what) const {
  return Error{ErrorCode::kUnavailable, Who() + ": " + std::string(what) + ": the answer is not the expected JSON", {}};
}

Error HttpAdapter::Invalid(std::string_view message) const {
  return Error::Invalid(Redact(Who() + ": " + std::string(message)));
}

}  // namespace storeplane::cicd
