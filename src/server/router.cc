#include "server/router.h"

namespace storeplane::server {

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    const auto next = path.find('/', i);
    const auto end = next == std::string_view::npos ? path.size() : next;
    out.emplace_back(path.substr(i, end - i));
    i = end;
  }
  return out;
}

Router::Router(const std::vector<RouteSpec>& routes) {
  for (const auto& r : routes) routes_.push_back(Compiled{&r, SplitPath(r.path_template)});
}

RouteMatch Router::Match(std::string_view method, std::string_view path) const {
  RouteMatch result;
  // Prefix routes first: below them a trailing slash is part of the file's path.
  for (const auto& route : routes_) {
    if (!route.spec->prefix || !path.starts_with(route.spec->path_template)) continue;
    if (route.spec->method == method) {
      result.outcome = RouteMatch::Outcome::kMatched;
      result.route = route.spec;
      result.params["path"] = std::string(path.substr(route.spec->path_template.size()));
      result.allowed_methods.clear();
      return result;
    }
    result.outcome = RouteMatch::Outcome::kMethodNotAllowed;
    result.allowed_methods.emplace_back(route.spec->method);
  }
  if (result.outcome == RouteMatch::Outcome::kMethodNotAllowed) return result;
  // A trailing slash or an empty segment is not the same resource.
  if (path.empty() || path.front() != '/' || (path.size() > 1 && path.back() == '/') ||
      path.find("//") != std::string_view::npos) {
    return result;
  }
  const auto segments = SplitPath(path);
  for (const auto& route : routes_) {
    if (route.spec->prefix || route.segments.size() != segments.size()) continue;
    std::map<std::string, std::string> params;
    bool ok = true;
    for (std::size_t i = 0; i < segments.size() && ok; ++i) {
      const auto& pattern = route.segments[i];
      if (pattern.size() > 2 && pattern.front() == '{' && pattern.back() == '}') {
        params[pattern.substr(1, pattern.size() - 2)] = segments[i];
      } else {
        ok = pattern == segments[i];
      }
    }
    if (!ok) continue;
    if (route.spec->method == method) {
      result.outcome = RouteMatch::Outcome::kMatched;
      result.route = route.spec;
      result.params = std::move(params);
      result.allowed_methods.clear();
      return result;
    }
    result.outcome = RouteMatch::Outcome::kMethodNotAllowed;
    result.allowed_methods.emplace_back(route.spec->method);
  }
  return result;
}

}  // namespace storeplane::server
