// The web UI: GET /ui/<file> serves the files of ui/ embedded at build time (ui_bundle.h),
// /ui/ serves index.html, and /ui and / redirect to /ui/. Public routes: the files hold no
// data and no secret; the UI itself calls /v1 with the operator's bearer token. Every answer
// carries a strict Content-Security-Policy (no inline script or style, no other origin),
// nosniff and no-referrer, and an ETag from the file's SHA-256 with Cache-Control: no-cache.
#include <string>
#include <string_view>

#include "server/app.h"
#include "server/ui_bundle.h"

namespace storeplane::server {
namespace {

constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

void AddUiHeaders(Response& resp) {
  resp.SetHeader("Content-Security-Policy", std::string(kContentSecurityPolicy));
  resp.SetHeader("X-Content-Type-Options", "nosniff");
  resp.SetHeader("Referrer-Policy", "no-referrer");
  resp.SetHeader("Cache-Control", "no-cache");
}

std::string_view ContentTypeFor(std::string_view path) {
  const auto dot = path.rfind('.');
  const std::string_view ext = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "ico") return "image/x-icon";
  if (ext == "json") return "application/json";
  if (ext == "txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

Response Redirect(int status, std::string location) {
  Response resp;
  resp.status = status;
  resp.content_type = "text/plain; charset=utf-8";
  resp.body = "see " + location + "\n";
  resp.SetHeader("Location", std::move(location));
  AddUiHeaders(resp);
  return resp;
}

// True when an If-None-Match header value names `etag` (or is "*").
bool Matches(std::string_view if_none_match, std::string_view etag) {
  std::size_t i = 0;
  while (i < if_none_match.size()) {
    const auto comma = if_none_match.find(',', i);
    auto item = if_none_match.substr(i, comma == std::string_view::npos ? std::string_view::npos : comma - i);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == "*" || item == etag) return true;
    if (comma == std::string_view::npos) break;
    i = comma + 1;
  }
  return false;
}

Response ServeFile(const Request& request, std::string_view path) {
  if (path.empty()) path = "index.html";
  for (const auto& file : UiFiles()) {
    if (file.path != path) continue;
    Response resp;
    const std::string etag = "\"" + std::string(file.sha256.substr(0, 32)) + "\"";
    if (Matches(request.Header("if-none-match"), etag)) {
      resp.status = 304;
      resp.content_type.clear();
    } else {
      resp.content_type = std::string(ContentTypeFor(file.path));
      resp.body = std::string(file.bytes);
    }
    resp.SetHeader("ETag", etag);
    AddUiHeaders(resp);
    return resp;
  }
  Response resp;
  resp.status = 404;
  resp.content_type = "text/plain; charset=utf-8";
  resp.body = "not found\n";
  AddUiHeaders(resp);
  return resp;
}

}  // namespace

void RegisterUiHandlers(std::map<std::string, Handler>& by_route) {
  by_route[RouteKey("GET", "/")] = [](RequestContext&) -> Result<Response> { return Redirect(302, "/ui/"); };
  by_route[RouteKey("GET", "/ui")] = [](RequestContext&) -> Result<Response> { return Redirect(301, "/ui/"); };
  by_route[RouteKey("GET", "/ui/")] = [](RequestContext& ctx) -> Result<Response> {
    auto it = ctx.params.find("path");
    return ServeFile(ctx.request, it == ctx.params.end() ? std::string_view() : std::string_view(it->second));
  };
}

}  // namespace storeplane::server
