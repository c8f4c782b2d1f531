#include "cli/events_commands.h"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>

#include "cli/output.h"

namespace storeplane::cli {

namespace json = boost::json;

namespace {

std::string Field(const json::object& object, std::string_view key) {
  const std::string text = CellText(object, key);
  return text == "<none>" ? std::string("-") : text;
}

const json::object* Inner(const json::object& data, std::string_view key) {
  auto it = data.find(key);
  return it != data.end() && it->value().is_object() ? &it->value().as_object() : nullptr;
}

}  // namespace

std::string EventLine(const std::string& type, const json::object& data) {
  std::string line = Field(data, "at") + "  " + type + "  " + Field(data, "store_id");
  if (const auto* store = Inner(data, "store")) {
    line += "  state=" + Field(*store, "state") + " environment=" + Field(*store, "environment") +
            " isolation=" + Field(*store, "isolation_mode") + " version=" + Field(*store, "version");
  } else if (const auto* run = Inner(data, "run")) {
    line += "  " + Field(*run, "id") + " " + Field(*run, "kind") + " " + Field(*run, "state");
  } else if (const auto* op = Inner(data, "operation")) {
    line += "  " + Field(*op, "id") + " " + Field(*op, "name") + " " + Field(*op, "state");
  } else if (const auto* change = Inner(data, "change")) {
    line += "  " + Field(*change, "id") + " " + Field(*change, "action") + " " + Field(*change, "status");
  } else if (type == "agent.status") {
    line += "  availability=" + Field(data, "availability") + " health=" + Field(data, "health");
  } else if (type == "agent.updated") {
    line += "  " + Field(data, "change");
  } else if (type == "reset") {
    line += "  " + Field(data, "reason");
  }
  if (data.contains("action") && type != "reset") line += "  (" + Field(data, "action") + ")";
  return line;
}

int WatchEvents(CliState& state, ApiSession& session, const EventWatch& watch) {
  client::HttpClient http({session.config().ca_file, session.config().insecure});
  std::string last_id = watch.last_event_id;
  long shown = 0;
  int failures = 0;
  const OutputFormat format = FormatOf(session);
  for (;;) {
    client::SseParser parser;
    bool done = false;
    client::HttpRequest request;
    request.url =
        session.config().server + WithQuery("/v1/events", {{"types", watch.types}, {"store", watch.store_id}});
    request.timeout_ms = 0;
    request.headers = {{"Accept", "text/event-stream"}};
    if (!session.config().token.empty())
      request.headers.emplace_back("Authorization", "Bearer " + session.config().token);
    if (!last_id.empty()) request.headers.emplace_back("Last-Event-ID", last_id);
    bool opened = false;
    request.on_body = [&](std::string_view bytes) {
      failures = 0;
      if (!opened) {
        opened = true;
        if (watch.on_open && !watch.on_open()) done = true;
        if (done) return false;
      }
      return parser.Feed(bytes, [&](const client::SseEvent& event) {
        if (done) return;
        if (!event.id.empty()) last_id = event.id;
        boost::system::error_code ec;
        json::value parsed = json::parse(event.data, ec);
        const json::object empty;
        const json::object& data = !ec && parsed.is_object() ? parsed.as_object() : empty;
        if (watch.handle) {
          if (!watch.handle(event.type, data)) done = true;
          return;
        }
        if (event.type == "reset") {
          if (watch.on_reset) watch.on_reset();
        } else if (watch.show && !watch.show(event.type, data)) {
          return;
        }
        Print(state, format, parsed, [&] { return EventLine(event.type, data) + "\n"; });
        state.out->flush();
        if (event.type != "reset" && watch.max_events > 0 && ++shown >= watch.max_events) done = true;
      }) && !done;
    };
    auto response = http.Send(request);
    if (done) return static_cast<int>(kExitOk);
    long delay_ms = parser.retry_ms() > 0 ? parser.retry_ms() : 3000;
    if (response.ok() && response->status != 200 && response->status != 429 && response->status < 500) {
      return ReportProblem(state, *response);
    }
    if (!response.ok() && failures == 0) {
      *state.err << ErrorLine("event stream interrupted", response.error().message) << "; reconnecting\n";
    }
    ++failures;
    delay_ms = std::min<long>(30'000, delay_ms * std::min(failures, 10));
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  }
}

void AddEventsCommand(CLI::App& root, CliState& state) {
  auto watch = std::make_shared<EventWatch>();
  CLI::App* events =
      root.add_subcommand("events", "Follow the live event stream: stores, agents, runs, changes, operations");
  events->add_option("--types", watch->types, "Only these kinds, comma-separated: store,agent,run,change,operation");
  events->add_option("--store", watch->store_id, "Only events about this store");
  events->add_option("--since", watch->last_event_id, "Resume after this event id (from a previous watch)");
  events->add_option("--count", watch->max_events, "Stop after this many events")->check(CLI::PositiveNumber);
  events->footer(
      "Shows only the events your roles let you read. Reconnects by itself, resuming where it\n"
      "left off; when the server cannot resume (it restarted) it prints a reset line.");
  events->final_callback([&state, watch] {
    state.action = Guarded(state, [&state, watch] {
      return WithSession(state, [&](ApiSession& session) { return WatchEvents(state, session, *watch); });
    });
  });
}

}  // namespace storeplane::cli
