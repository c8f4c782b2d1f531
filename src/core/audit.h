// The audit trail's records and their hash chain: a canonical byte encoding of each record,
// hash = SHA-256(prev_hash || canonical), signed checkpoints (Ed25519) over (seq, hash),
// and VerifyChain(), which names the first record that does not fit. Pure functions (the
// crypto is OpenSSL's, with keys passed in); no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace storeplane::core {

// What the caller knows about an action; the storage layer assigns seq and the hashes.
struct AuditEntry {
  std::int64_t time_ms = 0;
  std::string principal;  // principal id, or "" when unauthenticated, "system" for the server
  std::string source;     // peer address, or "internal"
  std::string action;     // catalog name, or the attempted route when no action matched
  std::string target;     // "store/<id>", "change/<id>", "token/<id>", "policy", ""
  std::string request_id;
  std::string decision;                       // "allow" | "deny"
  std::string rule;                           // the deciding rule id
  std::string outcome;                        // "ok" | "denied" | "pending_approval" | "error:<code>"
  std::map<std::string, std::string> params;  // whitelisted parameters only, never secrets
};

struct AuditRecord {
  std::int64_t seq = 0;  // 1, 2, 3, ... without gaps
  AuditEntry entry;
  std::string prev_hash;  // hex; 64 zeros for seq 1
  std::string hash;       // hex SHA-256(prev_hash bytes || CanonicalEncoding)
};

inline constexpr std::string_view kGenesisHash = "0000000000000000000000000000000000000000000000000000000000000000";

// Length-prefixed, field-ordered encoding of seq and every entry field (params sorted by
// key); the same record always gives the same bytes.
std::string CanonicalEncoding(std::int64_t seq, const AuditEntry& entry);
// Builds the sealed record that follows `prev` (or the genesis when seq == 1).
AuditRecord Seal(std::int64_t seq, std::string_view prev_hash, AuditEntry entry);
// Recomputes the hash of `record` from its fields and prev_hash.
std::string RecomputeHash(const AuditRecord& record);

// A signed statement "the record with seq N has hash H", made every N records or T seconds.
struct AuditCheckpoint {
  std::int64_t seq = 0;  // the last record covered
  std::string hash;      // that record's hash (hex)
  std::int64_t time_ms = 0;
  std::string key_id;     // hex SHA-256 of the raw public key, first 16 chars
  std::string signature;  // hex Ed25519 signature over CheckpointMessage
};

std::string CheckpointMessage(const AuditCheckpoint& checkpoint);

// Ed25519 keys as PEM text (PKCS#8 private, SubjectPublicKeyInfo public).
struct SigningKey {
  std::string private_pem;
  std::string public_pem;
};
Result<SigningKey> GenerateSigningKey();
Result<std::string> PublicKeyFromPrivate(std::string_view private_pem);
Result<std::string> KeyId(std::string_view public_pem);
Result<std::string> Sign(std::string_view private_pem, std::string_view message);  // hex signature
bool VerifySignature(std::string_view public_pem, std::string_view message, std::string_view hex_signature);

struct ChainReport {
  bool ok = true;
  std::int64_t records = 0;
  std::int64_t checkpoints_verified = 0;
  std::int64_t first_bad_seq = 0;  // 0 when ok
  std::string problem;             // e.g. "record 17: hash does not match its contents"
};

// Verifies records (in the order given) and checkpoints against `public_pem`:
// seq starts at 1 (or at the first record's seq when `allow_partial_start`) and has no gaps
// or repeats, each prev_hash is the previous hash, each hash matches its contents, every
// checkpoint's signature verifies and names a record present with that hash, and no
// checkpoint lies beyond the last record (truncation).
ChainReport VerifyChain(const std::vector<AuditRecord>& records, const std::vector<AuditCheckpoint>& checkpoints,
                        std::string_view public_pem);

// Where the records given to VerifyChain() start. By default the chain must start at seq 1
// from the genesis hash; with allow_partial_start the first record's seq and prev_hash are
// taken as given (a page of a longer chain), and checkpoints for earlier records are
// checked for their signature only.
struct VerifyOptions {
  bool allow_partial_start = false;
};
ChainReport VerifyChain(const std::vector<AuditRecord>& records, const std::vector<AuditCheckpoint>& checkpoints,
                        std::string_view public_pem, const VerifyOptions& options);

// Lower-case hex of `bytes`, and its inverse (nullopt for odd length or a non-hex digit).
std::string ToHex(std::string_view bytes);
std::optional<std::string> FromHex(std::string_view hex);
// Lower-case hex SHA-256 of `bytes`.
std::string Sha256Hex(std::string_view bytes);

}  // namespace storeplane::core
