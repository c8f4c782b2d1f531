// CI/CD callback signatures (core::VerifySignature, core::ValidateDeliveryId,
// src/core/callback_signature.h). Input: a mode byte, then lines: timestamp header,
// signature header, delivery id, and the body (the rest).
// Properties: a signature made by SignPayload over the fuzzed body verifies; the fuzzed
// headers never crash the check.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/callback_signature.h"
#include "fuzz_support.h"

using namespace storeplane;

namespace {
constexpr std::int64_t kNowS = 1'760'000'000;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Reader in(data, size);
  const auto mode = in.Byte();
  const auto timestamp = in.Line();
  const auto signature = in.Line();
  const auto delivery = in.Line();
  const auto body = in.Rest();

  core::SignatureCheck check;
  check.secrets = {"current-callback-secret-0123456789"};
  if (mode & 1) check.secrets.push_back("previous-callback-secret-9876543210");
  check.timestamp_header = timestamp;
  check.signature_header = signature;
  check.body = body;
  check.now_ms = kNowS * 1000 + (mode >> 1) * 997;
  check.window_ms = 5 * 60 * 1000;
  (void)core::VerifySignature(check);
  (void)core::ValidateDeliveryId(delivery);

  // A genuine signature over the same body, with the fuzzed timestamp when it is close.
  const std::string ts = std::to_string(kNowS);
  const auto good = core::SignPayload(check.secrets.back(), kNowS, body);
  core::SignatureCheck genuine = check;
  genuine.timestamp_header = ts;
  genuine.signature_header = good;
  genuine.now_ms = kNowS * 1000;
  if (!core::VerifySignature(genuine).ok()) __builtin_trap();
  // The genuine signature with the fuzzed timestamp: must never crash; with a body that
  // differs from the signed one, must never verify.
  genuine.timestamp_header = timestamp;
  (void)core::VerifySignature(genuine);
  if (!body.empty()) {
    const std::string changed = std::string(body) + "x";
    genuine.timestamp_header = ts;
    genuine.body = changed;
    if (core::VerifySignature(genuine).ok()) __builtin_trap();
  }
  return 0;
}
