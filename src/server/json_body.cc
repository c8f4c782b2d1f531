#include "server/json_body.h"

#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>

namespace storeplane::server {

Result<boost::json::object> ParseJsonObject(std::string_view body) {
  boost::json::parse_options options;
  options.max_depth = 16;
  options.allow_invalid_utf8 = false;
  options.allow_comments = false;
  options.allow_trailing_commas = false;
  boost::system::error_code ec;
  auto value = boost::json::parse(body, ec, {}, options);
  if (ec) {
    return Error{ErrorCode::kMalformedRequest, "the request body is not valid JSON: " + ec.message(), {}};
  }
  if (!value.is_object()) return Error::Invalid("the request body must be a JSON object");
  return std::move(value.as_object());
}

Status FieldReader::RejectUnknown(std::initializer_list<std::string_view> allowed) const {
  for (const auto& kv : object_) {
    bool known = false;
    for (auto name : allowed) known = known || kv.key() == name;
    if (!known) return Error::Invalid("unknown field '" + std::string(kv.key()) + "'", std::string(kv.key()));
  }
  return Status::Ok();
}

Result<std::string> FieldReader::RequiredString(std::string_view name) const {
  const auto* v = object_.if_contains(name);
  if (v == nullptr || v->is_null()) return Error::Invalid(std::string(name) + " is required", std::string(name));
  if (!v->is_string()) return Error::Invalid(std::string(name) + " must be a string", std::string(name));
  return std::string(v->as_string());
}

Result<std::optional<std::string>> FieldReader::OptionalString(std::string_view name) const {
  const auto* v = object_.if_contains(name);
  if (v == nullptr || v->is_null()) return std::optional<std::string>();
  if (!v->is_string()) return Error::Invalid(std::string(name) + " must be a string", std::string(name));
  return std::optional<std::string>(std::string(v->as_string()));
}

Result<std::optional<std::map<std::string, std::string>>> FieldReader::OptionalStringMap(std::string_view name) const {
  using Out = std::optional<std::map<std::string, std::string>>;
  const auto* v = object_.if_contains(name);
  if (v == nullptr || v->is_null()) return Out();
  if (!v->is_object()) {
    return Error::Invalid(std::string(name) + " must be an object of strings", std::string(name));
  }
  std::map<std::string, std::string> out;
  for (const auto& kv : v->as_object()) {
    if (!kv.value().is_string()) {
      const auto field = std::string(name) + "." + std::string(kv.key());
      return Error::Invalid(field + " must be a string", field);
    }
    out.emplace(std::string(kv.key()), std::string(kv.value().as_string()));
  }
  return Out(std::move(out));
}

}  // namespace storeplane::server
