// Legal-transition checks for the crash-point driver, built only on the core's pure state
// machines (core/pipeline_run.h, core/lifecycle.h, core/operation.h): a state observed after
// another must be reachable from it by a sequence of legal events (zero or more: two looks
// may see the same state, or miss the steps in between).
#pragma once

#include <string>

namespace storeplane::crash {

// Run states of a run of `kind` ("deploy", ...). False for unknown names.
bool RunReachable(const std::string& kind, const std::string& from, const std::string& to);
// Store lifecycle states ("registered", "active", ...).
bool StoreReachable(const std::string& from, const std::string& to);
// Operation states ("queued", "delivered", ...).
bool OperationReachable(const std::string& from, const std::string& to);
// Whether a run in `state` is final for its kind.
bool RunFinal(const std::string& kind, const std::string& state);
// Whether a run in `state` still occupies its store.
bool RunActive(const std::string& kind, const std::string& state);
// Whether an operation in `state` is final.
bool OperationFinal(const std::string& state);

}  // namespace storeplane::crash
