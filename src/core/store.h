// The Store: one Magento store instance in the registry, and the pure validation rules
// for its fields. No I/O here; times are passed in as Unix milliseconds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace storeplane::core {

// Ordered from loosest to strictest; see docs/ISOLATION_MODES.md. A store's mode may
// only be tightened (shared -> dedicated -> isolated), never relaxed.
enum class IsolationMode { kShared = 0, kDedicated = 1, kIsolated = 2 };

std::string_view ToString(IsolationMode mode);
std::optional<IsolationMode> ParseIsolationMode(std::string_view text);
// True when `to` is strictly tighter than `from`.
bool IsTightening(IsolationMode from, IsolationMode to);

using Labels = std::map<std::string, std::string>;

// The lifecycle states (see core/lifecycle.h for the transitions).
enum class StoreState {
  kRegistered,
  kProvisioning,
  kProvisionFailed,
  kActive,
  kDecommissioning,
  kDecommissionFailed,
  kDecommissioned,
};

std::string_view ToString(StoreState state);
std::optional<StoreState> ParseStoreState(std::string_view text);

struct Store {
  std::string id;           // DNS-label slug, immutable, never reused
  std::string name;         // human display name
  std::string environment;  // from the configured set, immutable
  IsolationMode isolation_mode = IsolationMode::kShared;
  Labels labels;
  StoreState state = StoreState::kRegistered;
  std::optional<std::string> desired_release;
  std::optional<std::string> current_release;  // as the agent reports it
  std::optional<std::string> last_known_good_release;
  std::int64_t version = 0;  // optimistic concurrency; starts at 1 when stored
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

// The configured set of environments (default production, staging, development).
struct EnvironmentSet {
  std::set<std::string> names{"production", "staging", "development"};
};

inline constexpr std::size_t kMaxStoreIdLength = 63;    // an RFC 1123 DNS label
inline constexpr std::size_t kMaxStoreNameBytes = 200;  // bytes of UTF-8, not characters

// Field rules. Each returns an Error naming the field and a clear, safe reason.
Status ValidateStoreId(std::string_view id);  // RFC 1123 DNS label, 1..63, [a-z0-9-], no leading/trailing '-'
// 1..200 bytes of valid UTF-8, no control characters (C0, DEL, C1), not only whitespace.
Status ValidateStoreName(std::string_view name);
Status ValidateEnvironment(std::string_view env, const EnvironmentSet& allowed);

// A request to register a store, as decoded from the API.
struct StoreRegistration {
  std::string id;
  std::string name;
  std::string environment;
  std::string isolation_mode;  // text, validated here
  Labels labels;
};

// Validates a registration and builds the Store to persist (state registered, version 1).
Result<Store> NewStore(const StoreRegistration& req, const EnvironmentSet& envs, std::int64_t now_ms);

// A change to the mutable metadata of a store. Absent fields are left as they are.
struct StorePatch {
  std::optional<std::string> name;
  std::optional<Labels> labels;  // replaces the whole label set
};

Status ValidatePatch(const StorePatch& patch);
// Applies a validated patch; bumps version and updated_at.
Store ApplyPatch(const Store& current, const StorePatch& patch, std::int64_t now_ms);

}  // namespace storeplane::core
