// What the CI/CD adapters share beyond the HTTP exchange: the settings every adapter has,
// credential reading, URL and form encoding, JSON field access, and the one mapping from an
// HTTP answer to the error vocabulary, with messages that never carry a credential.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cicd/http_call.h"
#include "cicd/provider.h"
#include "core/result.h"

namespace storeplane::cicd {

// What MakeProvider has checked before an adapter is built.
struct AdapterBasics {
  std::string name;
  std::string type;
  std::string base_url;  // http(s), no credentials, no query, no trailing slash
  HttpOptions http;
};

// A credential from `file` (its content trimmed) or from the environment variable `env`;
// empty when neither is configured. `field` names the setting ("token", "secret",
// "settings.api_token") in errors, which name the file or variable, never the content.
Result<std::string> ReadCredential(std::string_view field, const std::string& file, const std::string& env);

// kInvalidArgument for a missing or empty required setting, or one the type does not know.
Status CheckSettings(const std::map<std::string, std::string>& settings, std::string_view type,
                     std::initializer_list<std::string_view> required,
                     std::initializer_list<std::string_view> optional);
std::string Setting(const std::map<std::string, std::string>& settings, const std::string& key);

// Percent-encodes everything but RFC 3986's unreserved characters (for a path segment or a
// query value).
std::string PercentEncode(std::string_view text);
// application/x-www-form-urlencoded, in the order given.
std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields);
// Whether `token` occurs in `text` with no letter, digit or '_' right before or after it, so
// "run_ab" is not found inside "run_abc".
bool ContainsToken(std::string_view text, std::string_view token);
// Correlation ids ("run_<hex>") go into URLs and titles: 1 to 128 of [A-Za-z0-9._-].
bool IsValidCorrelationId(std::string_view id);
std::string Base64(std::string_view bytes);
// 1 to 18 ASCII digits (an id that fits an int64).
bool IsDecimalId(std::string_view text);

// JSON access that never throws: nullptr / empty / nullopt for a missing or mistyped value.
std::optional<boost::json::value> ParseJson(std::string_view text);
const boost::json::value* Field(const boost::json::value* value, std::string_view key);
std::string Text(const boost::json::value* value);                     // a string, or an integer's decimal text
std::optional<std::int64_t> Integer(const boost::json::value* value);  // an integer, or a string of digits
bool IsTrue(const boost::json::value* value);

// The base of the HTTP adapters: identity, sending, and turning answers into errors.
class HttpAdapter : public Provider {
 public:
  HttpAdapter(AdapterBasics basics, std::vector<std::string> secrets);
  const std::string& name() const override { return basics_.name; }
  std::string_view type() const override { return basics_.type; }

 protected:
  const AdapterBasics& basics() const { return basics_; }
  const std::string& base_url() const { return basics_.base_url; }

  // The exchange; a transport failure is kUnavailable naming this provider and `what`.
  Result<HttpAnswer> Send(std::string_view what, const HttpCall& call) const;
  // The error for an answer that is not a success: 5xx, 429 and a rate-limited 403 ->
  // kUnavailable; 401, 403 -> kPermissionDenied; other 4xx and 3xx -> kInvalidArgument.
  // The message names provider, `what` and the status, plus at most a short sanitized
  // snippet of a JSON error message; never the body otherwise.
  Error Refused(std::string_view what, const HttpAnswer& answer) const;
  // The answer to a trigger: any 2xx is accepted whatever its body says (an unreadable
  // answer must not cause a second pipeline); the ids are read from `id_key` and `url_key`
  // of a JSON object when there is one. Anything else is Refused.
  Result<TriggerResult> Accepted(std::string_view what, const HttpAnswer& answer, std::string_view id_key,
                                 std::string_view url_key) const;
  // A success whose body is not the expected shape: kUnavailable (may be a proxy's page).
  Error Malformed(std::string_view what) const;
  Error Invalid(std::string_view message) const;
  // "<type> provider \"<name>\"".
  std::string Who() const;

 private:
  std::string Redact(std::string text) const;

  AdapterBasics basics_;
  std::vector<std::string> secrets_;  // never in a message: replaced if a server echoes one
};

}  // namespace storeplane::cicd
