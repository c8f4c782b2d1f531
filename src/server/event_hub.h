// The live event stream's source: a bounded ring of recent events, fed by every committed
// write (stores, runs, changes, operations, agents' enrollment and revocation) and by the
// agents' changes of availability or health, read by each open /v1/events stream from its
// own position. Nothing here decides who may see an event: each event names the read
// action and store it is about, and the stream checks them for its caller.
//
// Two ways in. One process (SQLite): the repository's commit listener Publishes drafts and
// the hub numbers them. Replicas sharing an event log (PostgreSQL, ADR 0012): the
// repository's EventEncoder (EncodeBatch) stores each batch's events in its transaction,
// the log numbers them in commit order, and every replica's EventFeed reads them back and
// PublishStored's them, so that ids, frames and visibility are the same on every replica.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "core/authority.h"
#include "db/repository.h"
#include "server/wakeup.h"

namespace storeplane::server {

// The kinds a stream may ask for (`types=`): the part of an event type before the dot.
inline constexpr std::string_view kEventKinds[] = {"store", "agent", "run", "change", "operation", "rollout"};

// An event before it has an id: what it is, which store it is about, what a reader must
// be allowed (its read action on that store), and its payload.
struct EventDraft {
  std::string type;         // "store.updated", "agent.status", ...
  std::string store_id;     // "" when about no store
  std::string read_action;  // "store.read", "run.read", ...
  // Known when the event carries the store itself; for an event about no store (a rollout),
  // the environment it is decided against.
  std::optional<core::AuthzTarget> target;
  std::int64_t at_ms = 0;
  boost::json::object payload;  // merged into the data line after id, type, at, store_id
};

struct Event {
  std::int64_t seq = 0;  // 1, 2, ... within this process (its epoch), or the shared log's seq
  std::string type;
  std::string store_id;
  std::string read_action;
  std::string environment;  // events about an environment rather than a store (rollouts)
  std::string frame;        // the whole SSE frame: "id: ...\nevent: ...\ndata: {...}\n\n"
};

class EventHub {
 public:
  using Clock = std::function<std::int64_t()>;
  struct Options {
    std::size_t capacity = 10'000;
    int max_streams = 256;
    // Empty: a random epoch for this process. Replicas pass the shared log's epoch
    // (Repository::EventEpoch()), so an id means the same event on every replica.
    std::string epoch;
  };
  EventHub(Options options, Clock now_ms);

  // This process's epoch (or the shared log's): event ids are "<epoch>-<seq>", so an id
  // from before a restart is recognised as one that cannot be resumed.
  const std::string& epoch() const { return epoch_; }

  // Assigns ids in call order and wakes every waiting stream. Never blocks on I/O.
  void Publish(std::vector<EventDraft> drafts);

  // Events numbered by the shared log, oldest first (seqs increase, maybe with gaps: a
  // rolled-back transaction's). One whose seq is not after the last published is ignored.
  // Produces the same frames, and carries what the stream decides visibility on, as
  // Publish would for the drafts they were encoded from. Wakes every waiting stream.
  void PublishStored(const std::vector<db::StoredEvent>& events);
  // The next stored event comes after `seq` (the log's newest at start): Last-Event-IDs up
  // to `seq` are not resumable (a `reset`), `seq` itself and later ones are. Ignored when
  // `seq` is not after the last published seq.
  void StartAt(std::int64_t seq);

  // A draft as the shared log keeps it (seq 0 until the log assigns one). The store
  // events' scope is kept as `environment` (with store_id) plus the payload's
  // store.labels; a rollout's environment as `environment` (without store_id).
  static db::StoredEvent Encode(const EventDraft& draft);
  // DraftsOf + Encode: the repository's EventEncoder, run inside the write transaction.
  static std::vector<db::StoredEvent> EncodeBatch(const db::WriteBatch& batch, const db::WriteResult& result,
                                                  std::int64_t now_ms);

  // The events of a committed write batch, in effect order (the repository's commit listener).
  static std::vector<EventDraft> DraftsOf(const db::WriteBatch& batch, const db::WriteResult& result,
                                          std::int64_t now_ms);
  // An agent's availability or health changed.
  static EventDraft AgentStatusDraft(const std::string& store_id, const std::string& agent_id,
                                     std::string_view availability, std::string_view health, std::int64_t at_ms);

  // Where a stream resumes: the seq after which to read for a Last-Event-ID of this epoch
  // still in the ring; nullopt when it cannot (another epoch, malformed, never issued, or
  // what followed it was overwritten or came before StartAt). With a given epoch (a shared
  // log), an id past the last published seq is one another replica already published:
  // the stream resumes after it once this hub catches up.
  std::optional<std::int64_t> ResumeAfter(std::string_view last_event_id) const;
  std::int64_t last_seq() const;

  struct Read {
    std::vector<std::shared_ptr<const Event>> events;
    bool lost = false;             // events after `after` were overwritten before this read
    std::shared_ptr<Wakeup> wait;  // set when there was nothing: fires on the next Publish
  };
  // Up to `max` events with seq > after, oldest first (seqs may have gaps).
  Read ReadAfter(std::int64_t after, std::size_t max);

  // The store a store-scoped event is about, for deciding its read action: from the last
  // store event seen, else looked up once in `repo` and remembered.
  std::optional<core::AuthzTarget> TargetOf(const std::string& store_id, db::Repository& repo);

  // Counts open streams; false when max_streams are already open.
  bool OpenStream();
  void CloseStream();
  int open_streams() const;

 private:
  Options options_;
  Clock now_ms_;
  std::string epoch_;
  bool shared_log_;  // the epoch was given: ids are issued by a log shared with other replicas

  mutable std::mutex mu_;
  void AppendLocked(std::shared_ptr<Event> event, const boost::json::object& payload, std::int64_t at_ms);
  void RememberTarget(const core::AuthzTarget& target);

  std::deque<std::shared_ptr<const Event>> ring_;  // seqs increasing, maybe with gaps
  std::int64_t last_seq_ = 0;                      // the newest seq published (or StartAt)
  // Every event after floor_ is still in the ring: the seq of the last one dropped, or StartAt's.
  std::int64_t floor_ = 0;
  std::vector<std::shared_ptr<Wakeup>> waiting_;
  int streams_ = 0;

  std::mutex targets_mu_;
  std::map<std::string, core::AuthzTarget, std::less<>> targets_;
};

}  // namespace storeplane::server
