// GET /v1/whoami: the calling principal, so operators can check which token they hold.
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "server/app.h"

namespace storeplane::server {

void RegisterWhoamiHandlers(std::map<std::string, Handler>& by_route) {
  by_route[RouteKey("GET", "/v1/whoami")] = [](RequestContext& ctx) -> Result<Response> {
    const auto& p = *ctx.principal;
    boost::json::array roles;
    for (const auto& r : p.roles) roles.emplace_back(r);
    boost::json::object body{{"id", p.id}, {"name", p.name}, {"kind", p.kind}, {"roles", std::move(roles)}};
    Response resp;
    resp.body = boost::json::serialize(body);
    return resp;
  };
}

}  // namespace storeplane::server
