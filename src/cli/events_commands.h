// `storeplane events` and the --watch of `stores list` and `stores get`: they follow the
// server's live event stream (/v1/events), reconnecting with Last-Event-ID, and print one
// line per event (or its JSON with -o json).
#pragma once

#include <CLI/CLI.hpp>
#include <boost/json/object.hpp>

#include <functional>
#include <string>

#include "cli/command_support.h"
#include "client/sse_parser.h"

namespace storeplane::cli {

struct EventWatch {
  std::string types;     // "store,agent"; empty: every kind
  std::string store_id;  // empty: every store
  std::string last_event_id;
  long max_events = 0;  // stop after this many events shown; 0: until interrupted
  // Whether to show an event (the watch's own filters); every event when unset.
  std::function<bool(const std::string& type, const boost::json::object& data)> show;
  // Told when the server could not resume and the client should fetch afresh.
  std::function<void()> on_reset;
  // When set, every event (`reset` included) goes here instead of being printed, and the
  // filters above are not applied; returning false ends the watch (WatchEvents returns 0).
  std::function<bool(const std::string& type, const boost::json::object& data)> handle;
  // When set, told each time a connection's stream opens (its first bytes arrive), before
  // its events: the moment to fetch what is shown, so that nothing falls between that
  // fetch and the stream. Returning false ends the watch (WatchEvents returns 0).
  std::function<bool()> on_open;
};

// Follows the stream until max_events were shown, `handle` or `on_open` end it, the stream
// is refused (exit code of the problem), or the process is interrupted. Transport failures and ends of stream are
// retried with Last-Event-ID after the server's retry delay, backing off to 30 s.
int WatchEvents(CliState& state, ApiSession& session, const EventWatch& watch);

// One line for an event: time, type, store and what changed.
std::string EventLine(const std::string& type, const boost::json::object& data);

void AddEventsCommand(CLI::App& root, CliState& state);

}  // namespace storeplane::cli
