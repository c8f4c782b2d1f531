// GET /v1/events: the live event stream (Server-Sent Events) for the UI and the CLI's
// --watch. Each event is sent only when the caller, under the policy in force when it is
// sent, holds the event's read action on the store it is about. The caller's token is
// checked again every keep-alive interval, so a revoked or expired token ends the stream.
// Resumable with Last-Event-ID while the event is still in the server's ring; otherwise
// the stream starts with a `reset` event telling the client to fetch afresh.
#include <set>
#include <string>
#include <utility>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "core/authority.h"
#include "core/store.h"
#include "server/api_json.h"
#include "server/app.h"
#include "server/event_hub.h"

namespace storeplane::server {

namespace {

constexpr std::size_t kReadBatch = 256;
constexpr std::string_view kRetryMs = "3000";

struct StreamFilter {
  std::set<std::string, std::less<>> kinds;  // empty: every kind
  std::string store_id;                      // empty: every store
};

Result<StreamFilter> ParseFilter(const Request& request) {
  auto params = ParseQueryParams(request.query, {"types", "store"});
  if (!params.ok()) return params.error();
  StreamFilter filter;
  for (const auto& [key, value] : *params) {
    if (key == "types") {
      std::string_view rest = value;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        const std::string_view kind = rest.substr(0, comma);
        bool known = false;
        for (auto k : kEventKinds) known = known || k == kind;
        if (!known) {
          return Error::Invalid("types takes a comma-separated list of store, agent, run, change, operation, rollout",
                                key);
        }
        filter.kinds.emplace(kind);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      }
      if (filter.kinds.empty()) return Error::Invalid("types must name at least one kind", key);
    } else if (key == "store") {
      if (auto st = core::ValidateStoreId(value); !st.ok()) return Error::Invalid(st.error().message, key);
      filter.store_id = value;
    }
  }
  return filter;
}

std::string ResetFrame(std::string_view reason) {
  return "event: reset\ndata: " + boost::json::serialize(boost::json::object{{"type", "reset"}, {"reason", reason}}) +
         "\n\n";
}

class EventStream final : public ResponseStream {
 public:
  EventStream(Services& services, std::string principal, std::string token_id, StreamFilter filter, std::int64_t after,
              std::string opening, std::int64_t now_ms)
      : services_(services),
        hub_(*services.events),
        principal_(std::move(principal)),
        token_id_(std::move(token_id)),
        filter_(std::move(filter)),
        after_(after),
        pending_(std::move(opening)),
        checked_at_ms_(now_ms),
        sent_at_ms_(now_ms) {}
  ~EventStream() override { hub_.CloseStream(); }
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  std::int64_t idle_ms() const override { return services_.config.events.keepalive_ms; }

  Piece Next(bool /*idle*/, bool stopping) override {
    Piece piece;
    piece.data = std::move(pending_);
    pending_.clear();
    // Draining: end now; the client reconnects (to this server restarted, or another
    // replica) and resumes with its Last-Event-ID or is told to reset.
    if (stopping) {
      piece.end = true;
      return piece;
    }
    const auto now = services_.now_ms();
    if (now - checked_at_ms_ >= idle_ms()) {
      checked_at_ms_ = now;
      if (!TokenStillValid(now)) {
        piece.end = true;
        return piece;
      }
    }
    auto read = hub_.ReadAfter(after_, kReadBatch);
    if (read.lost) piece.data += ResetFrame("the stream fell behind the server's buffer; events were dropped");
    if (!read.events.empty()) {
      const auto policy = services_.policy.Get();
      for (const auto& event : read.events) {
        after_ = event->seq;
        if (Visible(*event, *policy)) piece.data += event->frame;
      }
    } else {
      piece.wait = std::move(read.wait);
    }
    if (piece.data.empty() && piece.wait && now - sent_at_ms_ >= idle_ms()) piece.data = ": keep-alive\n\n";
    if (!piece.data.empty()) sent_at_ms_ = now;
    return piece;
  }

 private:
  bool TokenStillValid(std::int64_t now) {
    auto token = services_.repo.GetToken(token_id_);
    if (!token.ok()) return true;  // the database is busy: keep going, ask again later
    const auto& record = *token;
    return record && !record->revoked_at_ms && (!record->expires_at_ms || *record->expires_at_ms > now);
  }

  bool Visible(const Event& event, const core::Policy& policy) {
    if (!filter_.kinds.empty()) {
      const auto dot = event.type.find('.');
      if (!filter_.kinds.contains(std::string_view(event.type).substr(0, dot))) return false;
    }
    if (!filter_.store_id.empty() && event.store_id != filter_.store_id) return false;
    const core::ActionInfo* action = core::FindAction(event.read_action);
    if (action == nullptr) return false;
    std::optional<core::AuthzTarget> target;
    if (action->store_scoped && event.store_id.empty()) {
      if (event.environment.empty()) return false;
      target = core::AuthzTarget{"", event.environment, {}};
    } else if (action->store_scoped) {
      target = hub_.TargetOf(event.store_id, services_.repo);
      if (!target) return false;
    }
    return core::Decide(policy, principal_, event.read_action, target).allowed;
  }

  Services& services_;
  EventHub& hub_;
  std::string principal_;
  std::string token_id_;
  StreamFilter filter_;
  std::int64_t after_;
  std::string pending_;  // the opening lines, sent with the first piece
  std::int64_t checked_at_ms_;
  std::int64_t sent_at_ms_;
};

Result<Response> OpenEventStream(RequestContext& ctx) {
  if (ctx.services.events == nullptr) return Error{ErrorCode::kUnavailable, "the event stream is not running", {}};
  auto filter = ParseFilter(ctx.request);
  if (!filter.ok()) return filter.error();
  EventHub& hub = *ctx.services.events;

  std::string opening = "retry: " + std::string(kRetryMs) + "\n\n";
  std::int64_t after = hub.last_seq();
  const std::string last_id = ctx.request.Header("last-event-id");
  if (!last_id.empty()) {
    if (auto resume = hub.ResumeAfter(last_id)) {
      after = *resume;
    } else {
      opening += ResetFrame("cannot resume after event " + last_id.substr(0, 64) +
                            ": the server restarted or no longer holds it");
    }
  }
  if (!hub.OpenStream()) {
    return Error{ErrorCode::kResourceExhausted, "too many open event streams (events.max_streams); retry shortly", {}};
  }
  Response response;
  response.status = 200;
  response.content_type = "text/event-stream; charset=utf-8";
  response.SetHeader("X-Accel-Buffering", "no");  // nginx: do not buffer the stream
  response.stream = std::make_shared<EventStream>(ctx.services, ctx.caller->principal_id, ctx.caller->token_id,
                                                  std::move(*filter), after, std::move(opening), ctx.now_ms);
  return response;
}

}  // namespace

void RegisterEventHandlers(std::map<std::string, Handler>& by_route) {
  by_route[RouteKey("GET", "/v1/events")] = OpenEventStream;
}

}  // namespace storeplane::server
