// Signatures of the messages exchanged with CI/CD: the generic webhook trigger storeplane
// sends, and the outcome callbacks it receives at /hooks/cicd/{provider}. HMAC-SHA256 over
// "<timestamp>.<raw body>" with a shared secret, hex-encoded as "sha256=<hex>", compared in
// constant time; the timestamp (Unix seconds) must be within a window of the receiver's
// clock both ways, so a captured message cannot be replayed later (and delivery ids, kept
// by the receiver, stop replays inside the window). Pure: time is passed in.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace storeplane::core {

inline constexpr std::string_view kTimestampHeader = "X-Storeplane-Timestamp";  // Unix seconds
inline constexpr std::string_view kSignatureHeader = "X-Storeplane-Signature";  // "sha256=<64 hex>"
inline constexpr std::string_view kDeliveryHeader = "X-Storeplane-Delivery";    // unique per delivery

// "sha256=" + lowercase hex HMAC-SHA256(secret, "<timestamp_s>.<body>").
std::string SignPayload(std::string_view secret, std::int64_t timestamp_s, std::string_view body);

struct SignatureCheck {
  std::vector<std::string> secrets;  // one, or two while a secret is being rotated
  std::string_view timestamp_header;
  std::string_view signature_header;
  std::string_view body;  // the raw bytes as received
  std::int64_t now_ms = 0;
  std::int64_t window_ms = 5 * 60 * 1000;
};
// kUnauthenticated with a reason safe to show ("the timestamp is not a number", "the
// timestamp is outside the 300 s window", "the signature is malformed", "the signature does
// not match"); never which secret nearly matched. Every secret is compared, in constant
// time, whatever the first comparison gave.
Status VerifySignature(const SignatureCheck& check);

// A delivery id: 1 to 128 characters of [A-Za-z0-9._:-].
Status ValidateDeliveryId(std::string_view id);

}  // namespace storeplane::core
