// The storage interface every handler uses. Implementations: SqliteRepository (embedded
// default) and, later, a PostgreSQL one; handlers never see SQL. All methods are
// thread-safe and blocking: call them from the worker pool, never from an I/O thread.
// Errors are values (never exceptions): kNotFound, kAlreadyExists, kPreconditionFailed,
// kUnavailable (database trouble, safe to retry), kInternal.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/label_selector.h"
#include "core/result.h"
#include "core/store.h"

namespace storeplane::db {

struct StoreQuery {
  std::optional<std::string> environment;
  std::optional<core::IsolationMode> isolation_mode;
  std::optional<core::StoreState> state;
  core::LabelSelector selector;
  std::string after_id;  // cursor: return stores with id > after_id, ordered by id
  int limit = 50;        // 1..1000
};

struct StorePage {
  std::vector<core::Store> items;
  std::string next_after_id;  // empty when there are no more matches
};

// Who is calling: an operator or a service account. Roles are evaluated by the
// authority layer; the repository only stores them.
struct Principal {
  std::string id;
  std::string name;
  std::string kind;  // "operator" | "service"
  std::vector<std::string> roles;
  std::int64_t created_at_ms = 0;
};

// A bearer token, stored only as the hex SHA-256 of the token text.
struct TokenRecord {
  std::string token_hash;
  std::string principal_id;
  std::string description;
  std::int64_t created_at_ms = 0;
  std::optional<std::int64_t> expires_at_ms;
};

// The remembered answer to a POST carrying an Idempotency-Key, scoped per principal.
struct IdempotencyRecord {
  std::string principal_id;
  std::string key;
  std::string request_hash;  // hex SHA-256 of method, path and body
  int status = 0;
  std::string response_body;
  std::string location;  // Location header of the original response, if any
  std::int64_t created_at_ms = 0;
};

class Repository {
 public:
  virtual ~Repository() = default;

  // Inserts a new store (and, atomically, the idempotency record if given).
  // kAlreadyExists if the id was ever used, including by a decommissioned store.
  virtual Result<core::Store> InsertStore(const core::Store& store,
                                          const std::optional<IdempotencyRecord>& idempotency) = 0;
  virtual Result<core::Store> GetStore(std::string_view id) = 0;
  virtual Result<StorePage> ListStores(const StoreQuery& query) = 0;
  // Replaces the stored row with `updated` if the stored version equals expected_version
  // (updated.version must be expected_version + 1). kPreconditionFailed otherwise.
  virtual Result<core::Store> UpdateStore(const core::Store& updated, std::int64_t expected_version) = 0;
  virtual Result<std::int64_t> CountStores() = 0;

  virtual Status InsertPrincipalWithToken(const Principal& principal, const TokenRecord& token) = 0;
  // The principal owning an unexpired token with this hash, or nullopt.
  virtual Result<std::optional<Principal>> FindPrincipalByTokenHash(std::string_view token_hash,
                                                                    std::int64_t now_ms) = 0;
  virtual Result<std::int64_t> CountPrincipals() = 0;

  virtual Result<std::optional<IdempotencyRecord>> FindIdempotency(std::string_view principal_id,
                                                                   std::string_view key) = 0;

  // Cheap liveness check of the database, for /readyz.
  virtual Status Ping() = 0;
};

}  // namespace storeplane::db
