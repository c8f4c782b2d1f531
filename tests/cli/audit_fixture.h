// Builds a valid audit trail for the CLI tests with the core's own sealing and signing
// (core::Seal, core::Sign), spelled as the API spells it: JSON records and checkpoints,
// and the NDJSON of GET /v1/audit/export. Tests then edit, delete, reorder or truncate it.
#pragma once

#include <boost/json.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/audit.h"
#include "core/time_format.h"

namespace storeplane::testing {

struct AuditFixture {
  core::SigningKey key;
  std::vector<core::AuditRecord> records;
  std::vector<core::AuditCheckpoint> checkpoints;

  // `count` records with a signed checkpoint after every `checkpoint_every` records.
  static AuditFixture Build(int count, int checkpoint_every) {
    AuditFixture fixture;
    auto key = core::GenerateSigningKey();
    if (!key) throw std::runtime_error("GenerateSigningKey: " + key.error().message);
    fixture.key = key.value();
    std::string prev(core::kGenesisHash);
    for (int i = 1; i <= count; ++i) {
      core::AuditEntry entry;
      entry.time_ms = 1733340000000 + i * 1000 + i;
      entry.principal = i % 3 == 0 ? "alice" : "admin";
      entry.source = "127.0.0.1:5555";
      entry.action = i % 2 == 0 ? "store.register" : "store.read";
      entry.target = "store/shop-" + std::to_string(i);
      entry.request_id = "rq-" + std::to_string(i);
      entry.decision = "allow";
      entry.rule = "operator/allow/1";
      entry.outcome = "ok";
      if (i % 2 == 0) entry.params = {{"environment", "development"}, {"isolation_mode", "shared"}};
      core::AuditRecord record = core::Seal(i, prev, entry);
      prev = record.hash;
      fixture.records.push_back(record);
      if (checkpoint_every > 0 && i % checkpoint_every == 0) fixture.checkpoints.push_back(fixture.Checkpoint(i));
    }
    return fixture;
  }

  // A checkpoint over the record with this seq, signed with the fixture's key.
  core::AuditCheckpoint Checkpoint(std::int64_t seq) const {
    core::AuditCheckpoint checkpoint;
    checkpoint.seq = seq;
    checkpoint.hash = records.at(static_cast<size_t>(seq - 1)).hash;
    checkpoint.time_ms = records.at(static_cast<size_t>(seq - 1)).entry.time_ms + 5;
    checkpoint.key_id = core::KeyId(key.public_pem).value();
    checkpoint.signature = core::Sign(key.private_pem, core::CheckpointMessage(checkpoint)).value();
    return checkpoint;
  }

  static boost::json::object RecordJson(const core::AuditRecord& record) {
    boost::json::object params;
    for (const auto& [name, value] : record.entry.params) params[name] = value;
    return boost::json::object{{"seq", record.seq},
                               {"time", core::FormatRfc3339Millis(record.entry.time_ms)},
                               {"time_ms", record.entry.time_ms},
                               {"principal", record.entry.principal},
                               {"source", record.entry.source},
                               {"action", record.entry.action},
                               {"target", record.entry.target},
                               {"request_id", record.entry.request_id},
                               {"decision", record.entry.decision},
                               {"rule", record.entry.rule},
                               {"outcome", record.entry.outcome},
                               {"params", params},
                               {"prev_hash", record.prev_hash},
                               {"hash", record.hash}};
  }

  static boost::json::object CheckpointJson(const core::AuditCheckpoint& checkpoint) {
    return boost::json::object{{"seq", checkpoint.seq},
                               {"hash", checkpoint.hash},
                               {"time_ms", checkpoint.time_ms},
                               {"key_id", checkpoint.key_id},
                               {"signature", checkpoint.signature}};
  }

  static boost::json::object WithKind(const char* kind, const boost::json::object& fields) {
    boost::json::object object{{"kind", kind}};
    for (const auto& field : fields) object[field.key()] = field.value();
    return object;
  }

  // The export's lines (without newlines): every record, then every checkpoint.
  std::vector<std::string> NdjsonLines() const {
    std::vector<std::string> lines;
    for (const auto& record : records) {
      lines.push_back(boost::json::serialize(WithKind("record", RecordJson(record))));
    }
    for (const auto& checkpoint : checkpoints) {
      lines.push_back(boost::json::serialize(WithKind("checkpoint", CheckpointJson(checkpoint))));
    }
    return lines;
  }

  static std::string Join(const std::vector<std::string>& lines) {
    std::string text;
    for (const auto& line : lines) text += line + "\n";
    return text;
  }
};

}  // namespace storeplane::testing
