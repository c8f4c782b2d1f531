#include "server/event_hub.h"

#include <algorithm>
#include <charconv>
#include <utility>
#include <variant>

#include "core/time_format.h"
#include "server/agent_views.h"
#include "server/api_json.h"
#include "server/auth.h"
#include "server/rollout_requests.h"

namespace storeplane::server {

namespace json = boost::json;

EventHub::EventHub(Options options, Clock now_ms)
    : options_(options), now_ms_(std::move(now_ms)), epoch_(RandomHex(6)) {
  options_.capacity = std::max<std::size_t>(1, options_.capacity);
}

void EventHub::Publish(std::vector<EventDraft> drafts) {
  if (drafts.empty()) return;
  // Store events carry the store: remember its scope before any reader can see the event,
  // so that it and later events about the store are decided against the new labels.
  for (const auto& draft : drafts) {
    if (!draft.target || draft.target->store_id.empty()) continue;
    std::lock_guard lock(targets_mu_);
    targets_[draft.target->store_id] = *draft.target;
  }
  std::vector<std::shared_ptr<Wakeup>> wake;
  {
    std::lock_guard lock(mu_);
    for (auto& draft : drafts) {
      auto event = std::make_shared<Event>();
      event->seq = next_seq_++;
      event->type = std::move(draft.type);
      event->store_id = std::move(draft.store_id);
      event->read_action = std::move(draft.read_action);
      if (event->store_id.empty() && draft.target) event->environment = draft.target->environment;
      const std::string id = epoch_ + "-" + std::to_string(event->seq);
      json::object data{{"id", id},
                        {"type", event->type},
                        {"at", core::FormatRfc3339Millis(draft.at_ms)},
                        {"store_id", event->store_id.empty() ? json::value(nullptr) : json::value(event->store_id)}};
      for (auto& [key, value] : draft.payload) data[key] = std::move(value);
      event->frame = "id: " + id + "\nevent: " + event->type + "\ndata: " + json::serialize(data) + "\n\n";
      ring_.push_back(std::move(event));
      if (ring_.size() > options_.capacity) ring_.pop_front();
    }
    wake.swap(waiting_);
  }
  for (auto& w : wake) w->Fire();
}

std::optional<std::int64_t> EventHub::ResumeAfter(std::string_view last_event_id) const {
  const auto dash = last_event_id.rfind('-');
  if (dash == std::string_view::npos || last_event_id.substr(0, dash) != epoch_) return std::nullopt;
  const auto digits = last_event_id.substr(dash + 1);
  std::int64_t seq = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  if (ec != std::errc() || end != digits.data() + digits.size() || seq < 0) return std::nullopt;
  std::lock_guard lock(mu_);
  if (seq >= next_seq_) return std::nullopt;  // never issued
  const std::int64_t oldest = ring_.empty() ? next_seq_ : ring_.front()->seq;
  if (seq + 1 < oldest) return std::nullopt;  // what followed it is gone
  return seq;
}

std::int64_t EventHub::last_seq() const {
  std::lock_guard lock(mu_);
  return next_seq_ - 1;
}

EventHub::Read EventHub::ReadAfter(std::int64_t after, std::size_t max) {
  Read read;
  std::lock_guard lock(mu_);
  const std::int64_t oldest = ring_.empty() ? next_seq_ : ring_.front()->seq;
  if (after + 1 < oldest) {
    read.lost = true;
    after = oldest - 1;
  }
  if (after + 1 >= next_seq_) {
    read.wait = std::make_shared<Wakeup>();
    waiting_.push_back(read.wait);
    return read;
  }
  const auto first = static_cast<std::size_t>(after + 1 - oldest);
  const std::size_t last = std::min(ring_.size(), first + max);
  read.events.assign(ring_.begin() + static_cast<std::ptrdiff_t>(first),
                     ring_.begin() + static_cast<std::ptrdiff_t>(last));
  return read;
}

std::optional<core::AuthzTarget> EventHub::TargetOf(const std::string& store_id, db::Repository& repo) {
  {
    std::lock_guard lock(targets_mu_);
    if (auto it = targets_.find(store_id); it != targets_.end()) return it->second;
  }
  auto store = repo.GetStore(store_id);
  if (!store.ok()) return std::nullopt;
  core::AuthzTarget target{store->id, store->environment, store->labels};
  std::lock_guard lock(targets_mu_);
  // A store event published meanwhile is newer than what was read: it wins.
  return targets_.emplace(store_id, std::move(target)).first->second;
}

bool EventHub::OpenStream() {
  std::lock_guard lock(mu_);
  if (streams_ >= options_.max_streams) return false;
  ++streams_;
  return true;
}

void EventHub::CloseStream() {
  std::lock_guard lock(mu_);
  --streams_;
}

int EventHub::open_streams() const {
  std::lock_guard lock(mu_);
  return streams_;
}

namespace {

std::string StoreIdOfTarget(const std::string& target) {
  constexpr std::string_view kPrefix = "store/";
  return target.starts_with(kPrefix) ? target.substr(kPrefix.size()) : std::string();
}

// Walks a committed batch's effects in order, pairing each with the row it produced.
struct DraftBuilder {
  const db::WriteResult& result;
  std::string action;
  std::int64_t at_ms;
  std::vector<EventDraft>& out;
  std::size_t stores = 0, changes = 0, operations = 0, runs = 0, rollouts = 0;

  void Add(std::string type, std::string store_id, std::string read_action, json::object payload,
           std::optional<core::AuthzTarget> target = std::nullopt) {
    if (!action.empty()) payload["action"] = action;
    out.push_back(EventDraft{std::move(type), std::move(store_id), std::move(read_action), std::move(target), at_ms,
                             std::move(payload)});
  }
  void Store(const char* type) {
    if (stores >= result.stores.size()) return;
    const auto& store = result.stores[stores++];
    Add(type, store.id, "store.read", json::object{{"store", StoreJson(store)}},
        core::AuthzTarget{store.id, store.environment, store.labels});
  }
  void Change(const char* type) {
    if (changes >= result.changes.size()) return;
    const auto& change = result.changes[changes++];
    Add(type, StoreIdOfTarget(change.target), "change.read", json::object{{"change", ChangeJson(change)}});
  }
  void Operation(const char* type) {
    if (operations >= result.operations.size()) return;
    const auto& operation = result.operations[operations++];
    Add(type, operation.store_id, "operation.read", json::object{{"operation", OperationJson(operation)}});
  }
  void Run(const char* type) {
    if (runs >= result.runs.size()) return;
    const auto& run = result.runs[runs++];
    Add(type, run.store_id, "run.read", json::object{{"run", RunJson(run)}});
  }
  void Rollout(const char* type) {
    if (rollouts >= result.rollouts.size()) return;
    const auto& rollout = result.rollouts[rollouts++];
    Add(type, "", "rollout.read", json::object{{"rollout", RolloutJson(rollout)}},
        core::AuthzTarget{"", rollout.environment, {}});
  }
  void Agent(const std::string& store_id, const std::string& agent_id, const char* what) {
    json::object payload{{"agent_id", agent_id.empty() ? json::value(nullptr) : json::value(agent_id)},
                         {"change", what}};
    Add("agent.updated", store_id, "agent.read", std::move(payload));
  }

  void operator()(const db::InsertStoreEffect&) { Store("store.created"); }
  void operator()(const db::UpdateStoreEffect&) { Store("store.updated"); }
  void operator()(const db::InsertChangeEffect&) { Change("change.created"); }
  void operator()(const db::UpdateChangeEffect&) { Change("change.updated"); }
  void operator()(const db::InsertOperationEffect&) { Operation("operation.created"); }
  void operator()(const db::UpdateOperationEffect&) { Operation("operation.updated"); }
  void operator()(const db::InsertRunEffect&) { Run("run.created"); }
  void operator()(const db::UpdateRunEffect&) { Run("run.updated"); }
  void operator()(const db::InsertRolloutEffect&) { Rollout("rollout.created"); }
  void operator()(const db::UpdateRolloutEffect&) { Rollout("rollout.updated"); }
  void operator()(const db::EnrollAgentEffect& e) { Agent(e.agent.store_id, e.agent.id, "enrolled"); }
  void operator()(const db::RotateAgentCredentialEffect& e) { Agent(e.store_id, e.agent_id, "credential_rotated"); }
  void operator()(const db::RevokeAgentEffect& e) { Agent(e.store_id, "", "revoked"); }
  // Tokens, enrollment tokens, success times, outbox bookkeeping and callback deliveries
  // are not events: they are secrets' metadata or internal state.
  template <typename Other>
  void operator()(const Other&) {}
};

}  // namespace

std::vector<EventDraft> EventHub::DraftsOf(const db::WriteBatch& batch, const db::WriteResult& result,
                                           std::int64_t now_ms) {
  std::vector<EventDraft> out;
  if (batch.effects.empty()) return out;
  const std::string action = batch.audit.empty() ? std::string() : batch.audit.front().action;
  DraftBuilder builder{result, action, now_ms, out};
  for (const auto& effect : batch.effects) std::visit(builder, effect);
  return out;
}

EventDraft EventHub::AgentStatusDraft(const std::string& store_id, const std::string& agent_id,
                                      std::string_view availability, std::string_view health, std::int64_t at_ms) {
  return EventDraft{
      "agent.status", store_id,
      "agent.read",   std::nullopt,
      at_ms,          json::object{{"agent_id", agent_id}, {"availability", availability}, {"health", health}}};
}

}  // namespace storeplane::server
