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
    : options_(std::move(options)),
      now_ms_(std::move(now_ms)),
      epoch_(options_.epoch.empty() ? RandomHex(6) : options_.epoch),
      shared_log_(!options_.epoch.empty()) {
  options_.capacity = std::max<std::size_t>(1, options_.capacity);
}

void EventHub::RememberTarget(const core::AuthzTarget& target) {
  std::lock_guard lock(targets_mu_);
  targets_[target.store_id] = target;
}

void EventHub::AppendLocked(std::shared_ptr<Event> event, const json::object& payload, std::int64_t at_ms) {
  const std::string id = epoch_ + "-" + std::to_string(event->seq);
  json::object data{{"id", id},
                    {"type", event->type},
                    {"at", core::FormatRfc3339Millis(at_ms)},
                    {"store_id", event->store_id.empty() ? json::value(nullptr) : json::value(event->store_id)}};
  for (const auto& [key, value] : payload) data[key] = value;
  event->frame = "id: " + id + "\nevent: " + event->type + "\ndata: " + json::serialize(data) + "\n\n";
  last_seq_ = event->seq;
  ring_.push_back(std::move(event));
  if (ring_.size() > options_.capacity) {
    floor_ = ring_.front()->seq;
    ring_.pop_front();
  }
}

void EventHub::Publish(std::vector<EventDraft> drafts) {
  if (drafts.empty()) return;
  // Store events carry the store: remember its scope before any reader can see the event,
  // so that it and later events about the store are decided against the new labels.
  for (const auto& draft : drafts) {
    if (draft.target && !draft.target->store_id.empty()) RememberTarget(*draft.target);
  }
  std::vector<std::shared_ptr<Wakeup>> wake;
  {
    std::lock_guard lock(mu_);
    for (auto& draft : drafts) {
      auto event = std::make_shared<Event>();
      event->seq = last_seq_ + 1;
      event->type = std::move(draft.type);
      event->store_id = std::move(draft.store_id);
      event->read_action = std::move(draft.read_action);
      if (event->store_id.empty() && draft.target) event->environment = draft.target->environment;
      AppendLocked(std::move(event), draft.payload, draft.at_ms);
    }
    wake.swap(waiting_);
  }
  for (auto& w : wake) w->Fire();
}

namespace {

// The payload of a stored event: its data_json object (an empty one if it does not parse,
// which only a foreign writer could cause).
json::object PayloadOf(const db::StoredEvent& stored) {
  boost::system::error_code ec;
  auto value = json::parse(stored.data_json, ec);
  if (ec || !value.is_object()) return {};
  return std::move(value.as_object());
}

// A store event's scope, as Encode kept it: the environment column and the store's labels.
core::AuthzTarget StoredTarget(const db::StoredEvent& stored, const json::object& payload) {
  core::AuthzTarget target{stored.store_id, stored.environment, {}};
  const auto* store = payload.if_contains("store");
  const auto* labels = store && store->is_object() ? store->as_object().if_contains("labels") : nullptr;
  if (labels && labels->is_object()) {
    for (const auto& [key, value] : labels->as_object()) {
      if (value.is_string()) target.labels[std::string(key)] = std::string(value.as_string());
    }
  }
  return target;
}

}  // namespace

void EventHub::PublishStored(const std::vector<db::StoredEvent>& events) {
  if (events.empty()) return;
  std::int64_t last = 0;
  {
    std::lock_guard lock(mu_);
    last = last_seq_;
  }
  struct Parsed {
    const db::StoredEvent* stored;
    json::object payload;
  };
  std::vector<Parsed> parsed;
  parsed.reserve(events.size());
  for (const auto& stored : events) {
    if (stored.seq <= last) continue;  // already published (or before StartAt)
    last = stored.seq;
    parsed.push_back(Parsed{&stored, PayloadOf(stored)});
    // As in Publish: the store's new scope is known before any reader sees the event.
    if (!stored.store_id.empty() && !stored.environment.empty()) {
      RememberTarget(StoredTarget(stored, parsed.back().payload));
    }
  }
  if (parsed.empty()) return;
  std::vector<std::shared_ptr<Wakeup>> wake;
  {
    std::lock_guard lock(mu_);
    for (const auto& [stored, payload] : parsed) {
      if (stored->seq <= last_seq_) continue;  // a concurrent caller got there first
      auto event = std::make_shared<Event>();
      event->seq = stored->seq;
      event->type = stored->type;
      event->store_id = stored->store_id;
      event->read_action = stored->read_action;
      if (event->store_id.empty()) event->environment = stored->environment;
      AppendLocked(std::move(event), payload, stored->at_ms);
    }
    wake.swap(waiting_);
  }
  for (auto& w : wake) w->Fire();
}

void EventHub::StartAt(std::int64_t seq) {
  std::vector<std::shared_ptr<Wakeup>> wake;
  {
    std::lock_guard lock(mu_);
    if (seq <= last_seq_) return;
    // What the ring holds came before events this hub will never see: resuming after any
    // of it would skip them silently.
    ring_.clear();
    last_seq_ = seq;
    floor_ = seq;
    wake.swap(waiting_);
  }
  for (auto& w : wake) w->Fire();
}

db::StoredEvent EventHub::Encode(const EventDraft& draft) {
  db::StoredEvent out;
  out.type = draft.type;
  out.store_id = draft.store_id;
  out.read_action = draft.read_action;
  if (draft.target) out.environment = draft.target->environment;
  out.at_ms = draft.at_ms;
  out.data_json = json::serialize(draft.payload);
  return out;
}

std::vector<db::StoredEvent> EventHub::EncodeBatch(const db::WriteBatch& batch, const db::WriteResult& result,
                                                   std::int64_t now_ms) {
  std::vector<db::StoredEvent> out;
  for (const auto& draft : DraftsOf(batch, result, now_ms)) out.push_back(Encode(draft));
  return out;
}

std::optional<std::int64_t> EventHub::ResumeAfter(std::string_view last_event_id) const {
  const auto dash = last_event_id.rfind('-');
  if (dash == std::string_view::npos || last_event_id.substr(0, dash) != epoch_) return std::nullopt;
  const auto digits = last_event_id.substr(dash + 1);
  std::int64_t seq = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  if (ec != std::errc() || end != digits.data() + digits.size() || seq < 0) return std::nullopt;
  std::lock_guard lock(mu_);
  // Past the newest published: never issued by this process; with the shared log's epoch,
  // issued on a replica this one has not caught up with yet (the stream waits for it).
  if (seq > last_seq_) return shared_log_ ? std::optional<std::int64_t>(seq) : std::nullopt;
  if (seq < floor_) return std::nullopt;  // what followed it is gone
  return seq;
}

std::int64_t EventHub::last_seq() const {
  std::lock_guard lock(mu_);
  return last_seq_;
}

EventHub::Read EventHub::ReadAfter(std::int64_t after, std::size_t max) {
  Read read;
  std::lock_guard lock(mu_);
  if (after < floor_) {
    read.lost = true;
    after = floor_;
  }
  if (after >= last_seq_) {
    read.wait = std::make_shared<Wakeup>();
    waiting_.push_back(read.wait);
    return read;
  }
  const auto first = std::upper_bound(ring_.begin(), ring_.end(), after,
                                      [](std::int64_t seq, const auto& event) { return seq < event->seq; });
  const auto available = static_cast<std::size_t>(ring_.end() - first);
  read.events.assign(first, first + static_cast<std::ptrdiff_t>(std::min(available, max)));
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
