// Strict decoding of JSON request bodies: valid UTF-8, bounded depth, an object at the
// top, expected types, and no unknown fields. Every failure is a clear 4xx Error.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace storeplane::server {

// Parses `body` as a JSON object. kMalformedRequest for bytes that are not JSON or not
// UTF-8; kInvalidArgument when the top level is not an object.
Result<boost::json::object> ParseJsonObject(std::string_view body);

// Typed access to the fields of a decoded object, with errors naming the field.
class FieldReader {
 public:
  explicit FieldReader(const boost::json::object& object) : object_(object) {}

  // kInvalidArgument naming the first field not in `allowed`.
  Status RejectUnknown(std::initializer_list<std::string_view> allowed) const;
  Result<std::string> RequiredString(std::string_view name) const;
  Result<std::optional<std::string>> OptionalString(std::string_view name) const;
  Result<std::optional<std::map<std::string, std::string>>> OptionalStringMap(std::string_view name) const;

 private:
  const boost::json::object& object_;
};

}  // namespace storeplane::server
