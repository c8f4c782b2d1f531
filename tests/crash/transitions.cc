#include "tests/crash/transitions.h"

#include <deque>
#include <functional>
#include <optional>
#include <set>

#include "core/lifecycle.h"
#include "core/operation.h"
#include "core/pipeline_run.h"

namespace storeplane::crash {
namespace {

// Breadth-first search over `next`, which lists the states one legal event away.
template <typename State>
bool Reachable(State from, State to, const std::function<std::vector<State>(State)>& next) {
  std::set<State> seen{from};
  std::deque<State> queue{from};
  while (!queue.empty()) {
    const State s = queue.front();
    queue.pop_front();
    if (s == to) return true;
    for (State n : next(s)) {
      if (seen.insert(n).second) queue.push_back(n);
    }
  }
  return false;
}

}  // namespace

bool RunReachable(const std::string& kind_text, const std::string& from_text, const std::string& to_text) {
  const auto kind = core::ParseRunKind(kind_text);
  const auto from = core::ParseRunState(from_text);
  const auto to = core::ParseRunState(to_text);
  if (!kind || !from || !to) return false;
  return Reachable<core::RunState>(*from, *to, [&](core::RunState s) {
    std::vector<core::RunState> out;
    for (auto e : core::AllRunEvents()) {
      if (auto n = core::TransitionRun(*kind, s, e); n.ok()) out.push_back(*n);
    }
    return out;
  });
}

bool StoreReachable(const std::string& from_text, const std::string& to_text) {
  const auto from = core::ParseStoreState(from_text);
  const auto to = core::ParseStoreState(to_text);
  if (!from || !to) return false;
  return Reachable<core::StoreState>(*from, *to, [](core::StoreState s) {
    std::vector<core::StoreState> out;
    for (auto e : core::AllLifecycleEvents()) {
      if (auto n = core::Transition(s, e); n.ok()) out.push_back(*n);
    }
    return out;
  });
}

bool OperationReachable(const std::string& from_text, const std::string& to_text) {
  const auto from = core::ParseOperationState(from_text);
  const auto to = core::ParseOperationState(to_text);
  if (!from || !to) return false;
  return Reachable<core::OperationState>(*from, *to, [](core::OperationState s) {
    std::vector<core::OperationState> out;
    for (auto e : {core::OperationEvent::kDeliver, core::OperationEvent::kSucceed, core::OperationEvent::kFail,
                   core::OperationEvent::kExpire}) {
      if (auto n = core::TransitionOperation(s, e); n.ok()) out.push_back(*n);
    }
    return out;
  });
}

bool RunFinal(const std::string& kind_text, const std::string& state_text) {
  const auto kind = core::ParseRunKind(kind_text);
  const auto state = core::ParseRunState(state_text);
  return kind && state && core::IsFinal(*kind, *state);
}

bool RunActive(const std::string& kind_text, const std::string& state_text) {
  const auto kind = core::ParseRunKind(kind_text);
  const auto state = core::ParseRunState(state_text);
  return kind && state && core::IsActive(*kind, *state);
}

bool OperationFinal(const std::string& state_text) {
  const auto state = core::ParseOperationState(state_text);
  return state && core::IsFinal(*state);
}

}  // namespace storeplane::crash
