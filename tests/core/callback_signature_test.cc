// Signed CI/CD messages (src/core/callback_signature.h): known answers computed
// independently, secret rotation, tampering, malformed headers, the window's edges both
// ways, and delivery ids.
#include "core/callback_signature.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace storeplane::core {
namespace {

constexpr std::int64_t kTs = 1'700'000'000;        // seconds
constexpr std::int64_t kNowMs = kTs * 1000;        // the receiver's clock, in agreement
constexpr std::int64_t kWindowMs = 5 * 60 * 1000;  // the default
const std::string kBody = R"({"run":"run_0a1b","status":"succeeded"})";

// HMAC-SHA256 through OpenSSL's one-shot HMAC(), hex-encoded with printf: a path
// independent of the implementation's EVP_MAC and its own hex encoder.
std::string OneShotSignature(const std::string& secret, const std::string& message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &size);
  std::string out = "sha256=";
  for (unsigned int i = 0; i < size; ++i) {
    char hex[3];
    std::snprintf(hex, sizeof hex, "%02x", mac[i]);
    out += hex;
  }
  return out;
}

SignatureCheck Check(std::vector<std::string> secrets, const std::string& timestamp, const std::string& signature,
                     const std::string& body, std::int64_t now_ms = kNowMs) {
  SignatureCheck check;
  check.secrets = std::move(secrets);
  check.timestamp_header = timestamp;
  check.signature_header = signature;
  check.body = body;
  check.now_ms = now_ms;
  return check;
}

void ExpectUnauthenticated(const Status& status, const std::string& message) {
  ASSERT_FALSE(status.ok()) << message;
  EXPECT_EQ(status.error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(status.error().message, message);
}

TEST(CallbackSignatureTest, HeaderNames) {
  EXPECT_EQ(kTimestampHeader, "X-Storeplane-Timestamp");
  EXPECT_EQ(kSignatureHeader, "X-Storeplane-Signature");
  EXPECT_EQ(kDeliveryHeader, "X-Storeplane-Delivery");
}

// RFC 4231 test case 2's key and data, with the data as the body of "<ts>.<body>"; the
// expected value was computed outside OpenSSL's C API (Python's hmac module), and the same
// tool gives RFC 4231's published value for the bare data.
TEST(CallbackSignatureTest, KnownAnswer) {
  EXPECT_EQ(SignPayload("Jefe", kTs, "what do ya want for nothing?"),
            "sha256=1cdd0650c8be1cb0974b1788d458b1e781206cfef59b85faafc582d2e182c57e");
  // RFC 4231 itself, through the one-shot helper, checks the helper.
  EXPECT_EQ(OneShotSignature("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(CallbackSignatureTest, SignMatchesAnIndependentHmac) {
  const std::string binary("a\0b\xff\n", 5);
  const std::string long_secret(200, 'k');  // longer than SHA-256's block: hashed first
  for (const std::string& secret : {std::string("s3cret"), std::string("x"), long_secret}) {
    for (const std::string& body : {kBody, std::string(), binary}) {
      for (std::int64_t ts : {std::int64_t{0}, kTs, std::int64_t{999'999'999'999}}) {
        EXPECT_EQ(SignPayload(secret, ts, body), OneShotSignature(secret, std::to_string(ts) + "." + body));
      }
    }
  }
  const std::string signature = SignPayload("s3cret", kTs, kBody);
  ASSERT_EQ(signature.size(), 7U + 64U);
  EXPECT_EQ(signature.substr(0, 7), "sha256=");
}

TEST(CallbackSignatureTest, VerifiesItsOwnSignature) {
  const std::string ts = std::to_string(kTs);
  const std::string signature = SignPayload("s3cret", kTs, kBody);
  EXPECT_TRUE(VerifySignature(Check({"s3cret"}, ts, signature, kBody)).ok());
  // And one computed independently.
  EXPECT_TRUE(VerifySignature(Check({"s3cret"}, ts, OneShotSignature("s3cret", ts + "." + kBody), kBody)).ok());
  // An empty body is a body like any other.
  EXPECT_TRUE(VerifySignature(Check({"s3cret"}, ts, SignPayload("s3cret", kTs, ""), "")).ok());
}

TEST(CallbackSignatureTest, BothSecretsAreAcceptedDuringRotation) {
  const std::string ts = std::to_string(kTs);
  const std::vector<std::string> secrets = {"new-secret", "old-secret"};
  EXPECT_TRUE(VerifySignature(Check(secrets, ts, SignPayload("new-secret", kTs, kBody), kBody)).ok());
  EXPECT_TRUE(VerifySignature(Check(secrets, ts, SignPayload("old-secret", kTs, kBody), kBody)).ok());
  ExpectUnauthenticated(VerifySignature(Check(secrets, ts, SignPayload("other", kTs, kBody), kBody)),
                        "the signature does not match");
}

TEST(CallbackSignatureTest, WrongSecretAndTampering) {
  const std::string ts = std::to_string(kTs);
  const std::string signature = SignPayload("s3cret", kTs, kBody);
  ExpectUnauthenticated(VerifySignature(Check({"s3cret2"}, ts, signature, kBody)), "the signature does not match");
  ExpectUnauthenticated(VerifySignature(Check({"S3cret"}, ts, signature, kBody)), "the signature does not match");
  // The body, one byte changed, one byte added, one removed.
  std::string tampered = kBody;
  tampered[10] ^= 0x01;
  ExpectUnauthenticated(VerifySignature(Check({"s3cret"}, ts, signature, tampered)), "the signature does not match");
  ExpectUnauthenticated(VerifySignature(Check({"s3cret"}, ts, signature, kBody + " ")), "the signature does not match");
  ExpectUnauthenticated(VerifySignature(Check({"s3cret"}, ts, signature, kBody.substr(1))),
                        "the signature does not match");
  // The timestamp, still inside the window.
  ExpectUnauthenticated(VerifySignature(Check({"s3cret"}, std::to_string(kTs + 1), signature, kBody)),
                        "the signature does not match");
  // The signature, one hex digit changed.
  std::string flipped = signature;
  flipped.back() = flipped.back() == '0' ? '1' : '0';
  ExpectUnauthenticated(VerifySignature(Check({"s3cret"}, ts, flipped, kBody)), "the signature does not match");
  // The message's boundary: moving bytes between timestamp and body breaks it.
  const std::string shifted_sig = SignPayload("s3cret", 17, "00000000." + kBody);
  ExpectUnauthenticated(VerifySignature(Check({"s3cret"}, ts, shifted_sig, kBody)), "the signature does not match");
}

TEST(CallbackSignatureTest, MalformedSignatureHeaders) {
  const std::string ts = std::to_string(kTs);
  const std::string good = SignPayload("s3cret", kTs, kBody);
  const std::string hex = good.substr(7);
  std::string upper = hex;
  for (char& c : upper) {
    if (c >= 'a' && c <= 'f') c = static_cast<char>(c - 'a' + 'A');
  }
  ASSERT_NE(upper, hex);  // the MAC has a letter somewhere
  const std::vector<std::string> malformed = {
      "",
      hex,                        // no prefix
      "sha256=" + upper,          // uppercase hex
      "SHA256=" + hex,            // uppercase prefix
      "sha1=" + hex,              //
      "sha256:" + hex,            //
      "sha256=" + hex.substr(1),  // short
      "sha256=" + hex + "0",      // long
      "sha256=" + hex.substr(0, 63) + "g",
      " " + good,                  // spaces
      good + " ",                  //
      "sha256= " + hex.substr(1),  //
      "sha256=",                   //
      good + "," + good,           // two signatures
  };
  for (const std::string& header : malformed) {
    ExpectUnauthenticated(VerifySignature(Check({"s3cret"}, ts, header, kBody)), "the signature is malformed");
  }
}

TEST(CallbackSignatureTest, MalformedTimestamps) {
  const std::string signature = SignPayload("s3cret", kTs, kBody);
  for (const std::string& ts :
       {std::string(), std::string("-1700000000"), std::string("+1700000000"), std::string(" 1700000000"),
        std::string("1700000000 "), std::string("1700000000.0"), std::string("17e8"), std::string("0x6553F100"),
        std::string("1234567890123"), std::string("abc"), std::string("1700000000000")}) {
    ExpectUnauthenticated(VerifySignature(Check({"s3cret"}, ts, signature, kBody)), "the timestamp is not a number");
  }
  // Twelve digits is the most: a number, but far outside the window.
  ExpectUnauthenticated(VerifySignature(Check({"s3cret"}, "999999999999", signature, kBody)),
                        "the timestamp is outside the 300 s window");
}

TEST(CallbackSignatureTest, WindowEdgesBothWays) {
  const std::string ts = std::to_string(kTs);
  const std::string signature = SignPayload("s3cret", kTs, kBody);
  // Exactly at the edge: accepted, whether the sender's clock is behind or ahead.
  EXPECT_TRUE(VerifySignature(Check({"s3cret"}, ts, signature, kBody, kNowMs + kWindowMs)).ok());
  EXPECT_TRUE(VerifySignature(Check({"s3cret"}, ts, signature, kBody, kNowMs - kWindowMs)).ok());
  // One millisecond beyond: refused.
  ExpectUnauthenticated(VerifySignature(Check({"s3cret"}, ts, signature, kBody, kNowMs + kWindowMs + 1)),
                        "the timestamp is outside the 300 s window");
  ExpectUnauthenticated(VerifySignature(Check({"s3cret"}, ts, signature, kBody, kNowMs - kWindowMs - 1)),
                        "the timestamp is outside the 300 s window");
  // A custom window, named in the message.
  SignatureCheck check = Check({"s3cret"}, ts, signature, kBody, kNowMs + 60'001);
  check.window_ms = 60'000;
  ExpectUnauthenticated(VerifySignature(check), "the timestamp is outside the 60 s window");
  check.now_ms = kNowMs + 60'000;
  EXPECT_TRUE(VerifySignature(check).ok());
  // Extreme clocks do not overflow.
  check.now_ms = INT64_MIN;
  EXPECT_FALSE(VerifySignature(check).ok());
  check.now_ms = INT64_MAX;
  EXPECT_FALSE(VerifySignature(check).ok());
}

TEST(CallbackSignatureTest, OrderOfChecks) {
  // A malformed timestamp is reported before a malformed signature; a malformed signature
  // before a stale timestamp; a stale timestamp before a mismatch.
  ExpectUnauthenticated(VerifySignature(Check({"s3cret"}, "x", "nope", kBody)), "the timestamp is not a number");
  ExpectUnauthenticated(VerifySignature(Check({"s3cret"}, "1", "nope", kBody)), "the signature is malformed");
  ExpectUnauthenticated(VerifySignature(Check({"s3cret"}, "1", SignPayload("other", 1, kBody), kBody)),
                        "the timestamp is outside the 300 s window");
}

TEST(CallbackSignatureTest, NoSecretIsAnInternalError) {
  const std::string ts = std::to_string(kTs);
  const std::string signature = SignPayload("s3cret", kTs, kBody);
  for (const std::vector<std::string>& secrets :
       {std::vector<std::string>{}, std::vector<std::string>{""}, std::vector<std::string>{"s3cret", ""},
        std::vector<std::string>{"", "s3cret"}}) {
    const Status status = VerifySignature(Check(secrets, ts, signature, kBody));
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code, ErrorCode::kInternal);
    EXPECT_EQ(status.error().message, "no callback secret is configured");
  }
}

TEST(CallbackSignatureTest, MessagesNeverNameASecret) {
  const std::string ts = std::to_string(kTs);
  const Status status =
      VerifySignature(Check({"first-secret", "second-secret"}, ts, SignPayload("x", kTs, kBody), kBody));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message.find("secret"), std::string::npos);
  EXPECT_TRUE(status.error().field.empty());
}

TEST(CallbackSignatureTest, DeliveryIds) {
  for (const std::string& id : {std::string("a"), std::string("0f8e-11ee:abc_DEF.9"),
                                std::string("72d3a9c0-8b4c-4f0e-9d6b-1b2c3d4e5f60"), std::string(128, 'x')}) {
    EXPECT_TRUE(ValidateDeliveryId(id).ok()) << id;
  }
  for (const std::string& id :
       {std::string(), std::string(129, 'x'), std::string("a b"), std::string("a/b"), std::string("a\nb"),
        std::string("a\0b", 3), std::string("é"), std::string("a;b"), std::string("a+b")}) {
    const Status status = ValidateDeliveryId(id);
    ASSERT_FALSE(status.ok()) << id;
    EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace storeplane::core
