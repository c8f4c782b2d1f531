// JSON shapes of the agent side of the operator API: an agent, a store's health, an
// operation. One place per shape, so that docs/openapi.yaml has one thing to match.
#pragma once

#include <boost/json/object.hpp>
#include <optional>
#include <vector>

#include "core/store.h"
#include "db/repository.h"
#include "server/agent_hub.h"

namespace storeplane::server {

boost::json::object AgentJson(const AgentView& view);
boost::json::object OperationJson(const db::OperationRecord& operation);
// Health of `store`: from its agent's live view when it has one (else unknown, never
// seen), with the last successes of operations and checks (stored and live, newest kept).
boost::json::object StoreHealthJson(const core::Store& store, const std::optional<AgentView>& view,
                                    const std::vector<db::LastSuccess>& stored_successes);

}  // namespace storeplane::server
