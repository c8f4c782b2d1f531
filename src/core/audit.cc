#include "core/audit.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <memory>
#include <unordered_map>
#include <utility>

namespace storeplane::core {

namespace {

// ---- encoding ----

// Tags that open the canonical encodings, so that a record can never be mistaken for a
// checkpoint message (or for a later version of either).
constexpr std::string_view kRecordTag = "storeplane.audit.record.v1";
constexpr std::string_view kCheckpointTag = "storeplane.audit.checkpoint.v1";

void AppendU64(std::string& out, std::uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((value >> shift) & 0xff));
}

void AppendI64(std::string& out, std::int64_t value) { AppendU64(out, static_cast<std::uint64_t>(value)); }

// An 8-byte big-endian length, then the bytes: no field can run into the next.
void AppendField(std::string& out, std::string_view field) {
  AppendU64(out, field.size());
  out.append(field);
}

bool IsLowerHex(std::string_view text, std::size_t size) {
  return text.size() == size &&
         std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// ---- OpenSSL ownership ----

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

// Never prompt for a passphrase: an encrypted key simply does not load.
int NoPassphrase(char*, int, int, void*) { return 0; }

Error CryptoError(std::string message) {
  ERR_clear_error();  // the details stay out of messages; the queue must not leak into later calls
  return Error::Internal(std::move(message));
}

bool IsEd25519(const EVP_PKEY* key) { return key != nullptr && EVP_PKEY_get_id(key) == EVP_PKEY_ED25519; }

PkeyPtr LoadPrivateKey(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return nullptr;
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!IsEd25519(key.get())) {
    ERR_clear_error();
    return nullptr;
  }
  return key;
}

PkeyPtr LoadPublicKey(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return nullptr;
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!IsEd25519(key.get())) {
    ERR_clear_error();
    return nullptr;
  }
  return key;
}

std::optional<std::string> BioText(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  if (size <= 0 || data == nullptr) return std::nullopt;
  return std::string(data, static_cast<std::size_t>(size));
}

std::optional<std::string> PublicPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) return std::nullopt;
  return BioText(bio.get());
}

std::optional<std::string> KeyIdOf(EVP_PKEY* key) {
  std::array<unsigned char, 64> raw{};
  std::size_t size = raw.size();
  if (EVP_PKEY_get_raw_public_key(key, raw.data(), &size) != 1) return std::nullopt;
  return Sha256Hex(std::string_view(reinterpret_cast<const char*>(raw.data()), size)).substr(0, 16);
}

bool VerifyWith(EVP_PKEY* key, std::string_view message, std::string_view hex_signature) {
  auto signature = FromHex(hex_signature);
  if (!signature) return false;
  MdCtxPtr ctx(EVP_MD_CTX_new());
  bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key) == 1 &&
            EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature->data()), signature->size(),
                             reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  ERR_clear_error();
  return ok;
}

// ---- chain verification ----

std::string Seq(std::int64_t seq) { return std::to_string(seq); }

// The first problem found so far; a problem at a lower seq replaces one at a higher seq.
class FirstProblem {
 public:
  void Note(std::int64_t seq, std::string problem) {
    if (found_ && seq >= seq_) return;
    found_ = true;
    seq_ = seq;
    problem_ = std::move(problem);
  }
  bool found() const { return found_; }
  std::int64_t seq() const { return seq_; }
  const std::string& problem() const { return problem_; }

 private:
  bool found_ = false;
  std::int64_t seq_ = 0;
  std::string problem_;
};

}  // namespace

// ---- hex and hashing ----

std::string ToHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(kDigits[u >> 4]);
    out.push_back(kDigits[u & 0x0f]);
  }
  return out;
}

std::optional<std::string> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int high = HexValue(hex[i]);
    const int low = HexValue(hex[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<char>((high << 4) | low));
  }
  return out;
}

std::string Sha256Hex(std::string_view bytes) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1) {
    // Only a broken OpenSSL gets here; an empty hash never matches a real one.
    ERR_clear_error();
    return {};
  }
  return ToHex(std::string_view(reinterpret_cast<const char*>(digest.data()), size));
}

// ---- records ----

std::string CanonicalEncoding(std::int64_t seq, const AuditEntry& entry) {
  std::string out;
  out.reserve(256);
  AppendField(out, kRecordTag);
  AppendI64(out, seq);
  AppendI64(out, entry.time_ms);
  AppendField(out, entry.principal);
  AppendField(out, entry.source);
  AppendField(out, entry.action);
  AppendField(out, entry.target);
  AppendField(out, entry.request_id);
  AppendField(out, entry.decision);
  AppendField(out, entry.rule);
  AppendField(out, entry.outcome);
  AppendU64(out, entry.params.size());
  for (const auto& [key, value] : entry.params) {  // std::map: sorted by key
    AppendField(out, key);
    AppendField(out, value);
  }
  return out;
}

namespace {

// SHA-256 over the 32 raw bytes of prev_hash and the canonical encoding; "" (which never
// matches) when prev_hash is not 64 lower-case hex digits.
std::string ChainHash(std::int64_t seq, std::string_view prev_hash, const AuditEntry& entry) {
  if (!IsLowerHex(prev_hash, 64)) return {};
  std::string input = *FromHex(prev_hash);
  input += CanonicalEncoding(seq, entry);
  return Sha256Hex(input);
}

}  // namespace

AuditRecord Seal(std::int64_t seq, std::string_view prev_hash, AuditEntry entry) {
  AuditRecord record;
  record.seq = seq;
  record.prev_hash = std::string(prev_hash);
  record.hash = ChainHash(seq, prev_hash, entry);
  record.entry = std::move(entry);
  return record;
}

std::string RecomputeHash(const AuditRecord& record) { return ChainHash(record.seq, record.prev_hash, record.entry); }

// ---- checkpoints and keys ----

std::string CheckpointMessage(const AuditCheckpoint& checkpoint) {
  std::string out;
  AppendField(out, kCheckpointTag);
  AppendI64(out, checkpoint.seq);
  AppendField(out, checkpoint.hash);
  AppendI64(out, checkpoint.time_ms);
  AppendField(out, checkpoint.key_id);
  return out;
}

Result<SigningKey> GenerateSigningKey() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return CryptoError("cannot generate an Ed25519 key");
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return CryptoError("cannot encode the Ed25519 private key");
  }
  auto private_pem = BioText(bio.get());
  auto public_pem = PublicPem(key.get());
  if (!private_pem || !public_pem) return CryptoError("cannot encode the Ed25519 key");
  return SigningKey{std::move(*private_pem), std::move(*public_pem)};
}

Result<std::string> PublicKeyFromPrivate(std::string_view private_pem) {
  PkeyPtr key = LoadPrivateKey(private_pem);
  if (!key) return Error::Invalid("not an unencrypted Ed25519 private key in PEM (PKCS#8)");
  auto pem = PublicPem(key.get());
  if (!pem) return CryptoError("cannot encode the Ed25519 public key");
  return std::move(*pem);
}

Result<std::string> KeyId(std::string_view public_pem) {
  PkeyPtr key = LoadPublicKey(public_pem);
  if (!key) return Error::Invalid("not an Ed25519 public key in PEM");
  auto id = KeyIdOf(key.get());
  if (!id) return CryptoError("cannot read the Ed25519 public key");
  return std::move(*id);
}

Result<std::string> Sign(std::string_view private_pem, std::string_view message) {
  PkeyPtr key = LoadPrivateKey(private_pem);
  if (!key) return Error::Invalid("not an unencrypted Ed25519 private key in PEM (PKCS#8)");
  MdCtxPtr ctx(EVP_MD_CTX_new());
  std::array<unsigned char, 64> signature{};
  std::size_t size = signature.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), signature.data(), &size, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1) {
    return CryptoError("cannot sign with the Ed25519 key");
  }
  return ToHex(std::string_view(reinterpret_cast<const char*>(signature.data()), size));
}

bool VerifySignature(std::string_view public_pem, std::string_view message, std::string_view hex_signature) {
  PkeyPtr key = LoadPublicKey(public_pem);
  return key && VerifyWith(key.get(), message, hex_signature);
}

// ---- VerifyChain ----

ChainReport VerifyChain(const std::vector<AuditRecord>& records, const std::vector<AuditCheckpoint>& checkpoints,
                        std::string_view public_pem) {
  return VerifyChain(records, checkpoints, public_pem, VerifyOptions{});
}

ChainReport VerifyChain(const std::vector<AuditRecord>& records, const std::vector<AuditCheckpoint>& checkpoints,
                        std::string_view public_pem, const VerifyOptions& options) {
  ChainReport report;
  report.records = static_cast<std::int64_t>(records.size());
  FirstProblem first;

  // 1. The records, in the order given: contiguous seq, linked prev_hash, intact contents.
  // The scan stops at the first break: what follows cannot be trusted to line up.
  const std::int64_t start = options.allow_partial_start && !records.empty() ? records.front().seq : 1;
  std::unordered_map<std::int64_t, const AuditRecord*> by_seq;  // the records that fit
  std::int64_t expected = start;
  const AuditRecord* previous = nullptr;
  for (const AuditRecord& record : records) {
    const std::string name = "record " + Seq(record.seq);
    if (record.seq != expected) {
      if (previous == nullptr) {
        first.Note(record.seq, name + ": the chain starts here, but record " + Seq(expected) +
                                   " is missing (records were deleted from the start)");
      } else if (record.seq > expected) {
        const std::string missing = record.seq == expected + 1
                                        ? "record " + Seq(expected) + " is"
                                        : "records " + Seq(expected) + " to " + Seq(record.seq - 1) + " are";
        first.Note(record.seq, name + " follows record " + Seq(previous->seq) + ": " + missing +
                                   " missing (deleted or out of order)");
      } else if (record.seq == previous->seq) {
        first.Note(record.seq, name + " appears twice (duplicated)");
      } else {
        first.Note(record.seq, name + " follows record " + Seq(previous->seq) + ": out of order");
      }
      break;
    }
    const bool linked = previous == nullptr
                            ? (options.allow_partial_start && record.seq != 1) || record.prev_hash == kGenesisHash
                            : record.prev_hash == previous->hash;
    if (!linked) {
      first.Note(record.seq, previous == nullptr
                                 ? name + ": prev_hash is not the genesis hash"
                                 : name + ": prev_hash does not match the hash of record " + Seq(previous->seq) +
                                       " (a record was deleted, replaced or rewritten)");
      break;
    }
    if (RecomputeHash(record) != record.hash) {
      first.Note(record.seq, name + ": hash does not match its contents (the record was edited)");
      break;
    }
    by_seq.emplace(record.seq, &record);
    previous = &record;
    ++expected;
  }
  const std::int64_t last_seq = records.empty() ? start - 1 : records.back().seq;

  // 2. The checkpoints: signed by the given key, and naming records that are present with
  // the signed hash. A checkpoint beyond the last record means the tail was cut off.
  if (!checkpoints.empty()) {
    PkeyPtr key = LoadPublicKey(public_pem);
    std::optional<std::string> key_id = key ? KeyIdOf(key.get()) : std::nullopt;
    for (const AuditCheckpoint& checkpoint : checkpoints) {
      const std::string name = "checkpoint at record " + Seq(checkpoint.seq);
      if (!key || !key_id) {
        first.Note(checkpoint.seq, name + ": cannot be verified without a valid Ed25519 public key");
        continue;
      }
      if (checkpoint.key_id != *key_id) {
        first.Note(checkpoint.seq, name + ": signed by key " + checkpoint.key_id + ", not by the given key " + *key_id);
        continue;
      }
      if (!VerifyWith(key.get(), CheckpointMessage(checkpoint), checkpoint.signature)) {
        first.Note(checkpoint.seq, name + ": signature does not verify (forged or altered checkpoint)");
        continue;
      }
      if (checkpoint.seq > last_seq) {
        first.Note(last_seq + 1, "record " + Seq(last_seq + 1) +
                                     " is missing: a signed checkpoint covers records up to " + Seq(checkpoint.seq) +
                                     ", but the trail ends at record " + Seq(last_seq) + " (truncated)");
        continue;
      }
      if (checkpoint.seq < start) continue;  // before a partial page: signature checked only
      auto found = by_seq.find(checkpoint.seq);
      if (found == by_seq.end()) continue;  // beyond the first break, which is already noted
      if (found->second->hash != checkpoint.hash) {
        first.Note(checkpoint.seq, "record " + Seq(checkpoint.seq) +
                                       ": hash differs from the signed checkpoint (the trail was rewritten)");
        continue;
      }
      ++report.checkpoints_verified;
    }
  }

  if (first.found()) {
    report.ok = false;
    report.first_bad_seq = first.seq();
    report.problem = first.problem();
  }
  return report;
}

}  // namespace storeplane::core
