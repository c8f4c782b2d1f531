// Matches a method and path against route templates ("/v1/stores/{id}") and extracts the
// path parameters; a prefix route ("/ui/", RouteSpec::prefix) matches everything below it.
// Built once at start from the route table; lookups are read-only and thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "server/api.h"

namespace storeplane::server {

struct RouteMatch {
  enum class Outcome { kMatched, kNoPath, kMethodNotAllowed };
  Outcome outcome = Outcome::kNoPath;
  const RouteSpec* route = nullptr;
  std::map<std::string, std::string> params;
  std::vector<std::string> allowed_methods;  // for 405's Allow header
};

class Router {
 public:
  explicit Router(const std::vector<RouteSpec>& routes);
  RouteMatch Match(std::string_view method, std::string_view path) const;

 private:
  struct Compiled {
    const RouteSpec* spec;
    std::vector<std::string> segments;  // "{name}" marks a parameter
  };
  std::vector<Compiled> routes_;
};

std::vector<std::string> SplitPath(std::string_view path);

}  // namespace storeplane::server
