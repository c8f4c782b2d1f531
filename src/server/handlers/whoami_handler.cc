// GET /v1/whoami: the calling principal and its roles under the policy in force.
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "server/api_json.h"
#include "server/app.h"

namespace storeplane::server {

void RegisterWhoamiHandlers(std::map<std::string, Handler>& by_route) {
  by_route[RouteKey("GET", "/v1/whoami")] = [](RequestContext& ctx) -> Result<Response> {
    const auto& c = *ctx.caller;
    boost::json::array roles;
    for (const auto& r : c.roles) roles.emplace_back(r);
    return JsonResponse(200, boost::json::object{{"id", c.principal_id},
                                                 {"name", c.principal_id},
                                                 {"kind", c.kind.empty() ? "unknown" : c.kind},
                                                 {"roles", std::move(roles)},
                                                 {"token_id", c.token_id}});
  };
}

}  // namespace storeplane::server
