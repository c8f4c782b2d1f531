#include "core/callback_signature.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace storeplane::core {

namespace {

constexpr std::string_view kSignaturePrefix = "sha256=";
constexpr std::size_t kMacSize = 32;
constexpr std::size_t kMaxTimestampDigits = 12;
constexpr std::size_t kMaxDeliveryIdLength = 128;

using Mac = std::array<unsigned char, kMacSize>;

struct MacFree {
  void operator()(EVP_MAC* mac) const { EVP_MAC_free(mac); }
};
struct MacCtxFree {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};
using MacPtr = std::unique_ptr<EVP_MAC, MacFree>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, MacCtxFree>;

bool Update(EVP_MAC_CTX* ctx, std::string_view bytes) {
  return EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()) == 1;
}

// HMAC-SHA256(secret, "<timestamp>.<body>"), fed in pieces so that the body is not copied.
std::optional<Mac> ComputeMac(std::string_view secret, std::string_view timestamp, std::string_view body) {
  MacPtr mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  MacCtxPtr ctx(mac ? EVP_MAC_CTX_new(mac.get()) : nullptr);
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  // A non-null key pointer even for an empty secret: some providers refuse a null key.
  static const unsigned char kNoKey = 0;
  const auto* key = secret.empty() ? &kNoKey : reinterpret_cast<const unsigned char*>(secret.data());
  Mac out{};
  std::size_t out_size = 0;
  const bool ok = ctx && EVP_MAC_init(ctx.get(), key, secret.size(), params) == 1 && Update(ctx.get(), timestamp) &&
                  Update(ctx.get(), ".") && Update(ctx.get(), body) &&
                  EVP_MAC_final(ctx.get(), out.data(), &out_size, out.size()) == 1 && out_size == kMacSize;
  ERR_clear_error();  // the details stay out of messages; the queue must not leak into later calls
  if (!ok) return std::nullopt;
  return out;
}

std::string LowerHex(const Mac& mac) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(mac.size() * 2);
  for (unsigned char byte : mac) {
    out.push_back(kDigits[byte >> 4]);
    out.push_back(kDigits[byte & 0x0f]);
  }
  return out;
}

int LowerHexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// "sha256=" + exactly 64 lowercase hex digits, as the raw MAC.
std::optional<Mac> ParseSignature(std::string_view header) {
  if (header.size() != kSignaturePrefix.size() + kMacSize * 2 ||
      header.substr(0, kSignaturePrefix.size()) != kSignaturePrefix) {
    return std::nullopt;
  }
  const std::string_view hex = header.substr(kSignaturePrefix.size());
  Mac out{};
  for (std::size_t i = 0; i < kMacSize; ++i) {
    const int high = LowerHexValue(hex[2 * i]);
    const int low = LowerHexValue(hex[2 * i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out[i] = static_cast<unsigned char>((high << 4) | low);
  }
  return out;
}

// Decimal Unix seconds: 1 to 12 digits, nothing else (no sign, no spaces).
std::optional<std::int64_t> ParseTimestamp(std::string_view text) {
  if (text.empty() || text.size() > kMaxTimestampDigits) return std::nullopt;
  std::int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

// |now_ms - timestamp_ms| <= window_ms, without overflow for any now_ms.
bool WithinWindow(std::int64_t timestamp_s, std::int64_t now_ms, std::int64_t window_ms) {
  if (window_ms < 0) return false;
  const std::int64_t timestamp_ms = timestamp_s * 1000;  // at most 10^15: no overflow
  const auto a = static_cast<std::uint64_t>(now_ms);
  const auto b = static_cast<std::uint64_t>(timestamp_ms);
  const std::uint64_t distance = now_ms >= timestamp_ms ? a - b : b - a;
  return distance <= static_cast<std::uint64_t>(window_ms);
}

Error Unauthenticated(std::string message) { return Error{ErrorCode::kUnauthenticated, std::move(message), {}}; }

bool IsDeliveryIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == ':' || c == '-';
}

}  // namespace

std::string SignPayload(std::string_view secret, std::int64_t timestamp_s, std::string_view body) {
  const auto mac = ComputeMac(secret, std::to_string(timestamp_s), body);
  if (!mac) return {};  // libcrypto failed: an empty signature never verifies
  return std::string(kSignaturePrefix) + LowerHex(*mac);
}

// Checked in this order: a secret is configured, the timestamp is a number, the signature
// is well formed, the timestamp is inside the window, a secret matches.
Status VerifySignature(const SignatureCheck& check) {
  bool configured = !check.secrets.empty();
  for (const std::string& secret : check.secrets) configured = configured && !secret.empty();
  if (!configured) return Error::Internal("no callback secret is configured");

  const auto timestamp_s = ParseTimestamp(check.timestamp_header);
  if (!timestamp_s) return Unauthenticated("the timestamp is not a number");
  const auto signature = ParseSignature(check.signature_header);
  if (!signature) return Unauthenticated("the signature is malformed");
  if (!WithinWindow(*timestamp_s, check.now_ms, check.window_ms)) {
    return Unauthenticated("the timestamp is outside the " + std::to_string(check.window_ms / 1000) + " s window");
  }

  // Every secret is computed and compared, whatever an earlier comparison gave. The MAC is
  // over the timestamp exactly as received (it is all digits, so it has one meaning).
  bool matched = false;
  bool failed = false;
  for (const std::string& secret : check.secrets) {
    const auto expected = ComputeMac(secret, check.timestamp_header, check.body);
    if (!expected) {
      failed = true;
      continue;
    }
    const bool equal = CRYPTO_memcmp(expected->data(), signature->data(), kMacSize) == 0;
    matched = matched || equal;
  }
  if (matched) return Status::Ok();
  if (failed) return Error::Internal("the callback signature could not be computed");
  return Unauthenticated("the signature does not match");
}

Status ValidateDeliveryId(std::string_view id) {
  const Error invalid =
      Error::Invalid("the delivery id must be 1 to 128 characters of letters, digits, '.', '_', ':' and '-'",
                     std::string(kDeliveryHeader));
  if (id.empty() || id.size() > kMaxDeliveryIdLength) return invalid;
  for (char c : id) {
    if (!IsDeliveryIdChar(c)) return invalid;
  }
  return Status::Ok();
}

}  // namespace storeplane::core
