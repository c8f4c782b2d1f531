// Label key/value rules and the secret-refusal heuristics (src/core/labels.h).
#include "core/labels.h"

#include <gtest/gtest.h>

#include <string>

namespace storeplane::core {
namespace {

void ExpectInvalid(const Status& s, std::string_view field, std::string_view message_part) {
  ASSERT_FALSE(s.ok()) << "expected an error mentioning: " << message_part;
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.error().field, field);
  EXPECT_NE(s.error().message.find(message_part), std::string::npos) << s.error().message;
}

void ExpectRefusedAsSecretValue(std::string_view value, std::string_view reason_part) {
  Status s = CheckNotSecretLike("note", value);
  ExpectInvalid(s, "labels.note", "label value for key 'note' looks like a secret");
  if (s.ok()) return;
  EXPECT_NE(s.error().message.find(reason_part), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("storeplane never stores store secrets"), std::string::npos);
  EXPECT_EQ(s.error().message.find(value), std::string::npos) << "the value must never be echoed";
}

// --- keys -------------------------------------------------------------------------

TEST(LabelKeyTest, AcceptsKubernetesStyleKeys) {
  for (const char* key : {"env", "a", "Z", "9", "tier", "app.kubernetes.io/name", "example.com/team", "A_b.c-9",
                          "team-payments", "x/y"}) {
    EXPECT_TRUE(ValidateLabelKey(key).ok()) << key;
  }
}

TEST(LabelKeyTest, NameLengthBoundaryIs63) {
  EXPECT_TRUE(ValidateLabelKey(std::string(63, 'k')).ok());
  ExpectInvalid(ValidateLabelKey(std::string(64, 'k')), "labels." + std::string(64, 'k'), "at most 63");
  EXPECT_TRUE(ValidateLabelKey("example.com/" + std::string(63, 'k')).ok());
  EXPECT_FALSE(ValidateLabelKey("example.com/" + std::string(64, 'k')).ok());
}

TEST(LabelKeyTest, PrefixLengthBoundaryIs253) {
  // 4 parts of 63 chars and dots: 4*63 + 3 = 255; trim to exactly 253 and 254.
  const std::string part(63, 'p');
  std::string prefix = part + "." + part + "." + part + "." + part;  // 255
  const std::string p253 = prefix.substr(0, 253);
  const std::string p254 = prefix.substr(0, 254);
  ASSERT_NE(p253.back(), '.');
  EXPECT_TRUE(ValidateLabelKey(p253 + "/name").ok());
  ExpectInvalid(ValidateLabelKey(p254 + "/name"), "labels." + p254 + "/name", "at most 253");
}

TEST(LabelKeyTest, RejectsMalformedKeys) {
  ExpectInvalid(ValidateLabelKey(""), "labels.", "must not be empty");
  ExpectInvalid(ValidateLabelKey("-env"), "labels.-env", "start and end with a letter or digit");
  ExpectInvalid(ValidateLabelKey("env-"), "labels.env-", "start and end with a letter or digit");
  ExpectInvalid(ValidateLabelKey(".env"), "labels..env", "start and end");
  ExpectInvalid(ValidateLabelKey("env var"), "labels.env var", "found ' ' at position 3");
  ExpectInvalid(ValidateLabelKey("env:x"), "labels.env:x", "found ':'");
  ExpectInvalid(ValidateLabelKey("a/b/c"), "labels.a/b/c", "at most one '/'");
  ExpectInvalid(ValidateLabelKey("/env"), "labels./env", "prefix before '/' must not be empty");
  ExpectInvalid(ValidateLabelKey("example.com/"), "labels.example.com/", "name (after any prefix) must not be empty");
}

TEST(LabelKeyTest, PrefixMustBeLowercaseDnsSubdomain) {
  for (const char* key : {"Example.com/x", "ex_ample.com/x", "-example.com/x", "example-.com/x", "example..com/x",
                          "example.com./x", ".example.com/x"}) {
    ExpectInvalid(ValidateLabelKey(key), "labels." + std::string(key), "must be a DNS subdomain");
  }
}

TEST(LabelKeyTest, UnicodeAndControlBytesAreEscapedInField) {
  Status s = ValidateLabelKey("caf\xC3\xA9");
  ExpectInvalid(s, "labels.caf\\xC3\\xA9", "found byte 0xC3 at position 3");
  s = ValidateLabelKey("a\nb");
  ExpectInvalid(s, "labels.a\\x0Ab", "byte 0x0A");
  s = ValidateLabelKey(std::string(500, 'k'));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().field, "labels." + std::string(64, 'k') + "...");
}

// --- values -----------------------------------------------------------------------

TEST(LabelValueTest, AcceptsOrdinaryValues) {
  for (const char* v : {"", "production", "eu-west-1", "team-payments", "v2.3.1", "2026-12-04", "A", "7", "a_b.c-d"}) {
    EXPECT_TRUE(ValidateLabelValue(v).ok()) << v;
  }
}

TEST(LabelValueTest, LengthBoundaryIs63) {
  EXPECT_TRUE(ValidateLabelValue(std::string(63, 'v')).ok());
  ExpectInvalid(ValidateLabelValue(std::string(64, 'v')), "", "label value must be at most 63 characters (got 64)");
}

TEST(LabelValueTest, RejectsMalformedValuesWithoutEchoingThem) {
  ExpectInvalid(ValidateLabelValue("-prod"), "", "start and end with a letter or digit");
  ExpectInvalid(ValidateLabelValue("prod."), "", "start and end");
  Status s = ValidateLabelValue("hunter2!");
  ExpectInvalid(s, "", "invalid character at position 7");
  EXPECT_EQ(s.error().message.find("hunter2"), std::string::npos);
  ExpectInvalid(ValidateLabelValue("z\xC3\xBCrich"), "", "invalid character at position 1");
  ExpectInvalid(ValidateLabelValue("two words"), "", "invalid character at position 3");
}

// --- secret-like keys -------------------------------------------------------------

TEST(SecretKeyTest, RefusesKeysThatNameSecrets) {
  for (const char* key : {"db_password",
                          "DB-PASSWORD",
                          "passwd",
                          "admin_pwd",
                          "client.secret",
                          "secret",
                          "api-key",
                          "apiKey",
                          "API_KEY",
                          "aws_access_key",
                          "private_key",
                          "privkey",
                          "credentials",
                          "auth",
                          "oauth-client",
                          "basic_auth",
                          "authorization",
                          "authorize-url",
                          "tls.cert",
                          "certificate",
                          "github_token",
                          "example.com/token",
                          "secrets.example.com/owner",
                          "ssh-key",
                          "signing_key",
                          "db-connection-string",
                          "gpg.passphrase"}) {
    Status s = CheckNotSecretLike(key, "x");
    ASSERT_FALSE(s.ok()) << key;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(s.error().field, "labels." + std::string(key));
    EXPECT_NE(s.error().message.find("looks like it names a secret"), std::string::npos) << s.error().message;
  }
}

TEST(SecretKeyTest, MessageExplainsTheReason) {
  Status s = CheckNotSecretLike("db_password", "x");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message,
            "label key 'db_password' looks like it names a secret (it contains 'password'); storeplane never "
            "stores store secrets");
}

TEST(SecretKeyTest, AcceptsOrdinaryKeysIncludingKnownLookalikes) {
  // "author"/"authority" contain "auth" and "certain"/"concert" contain "cert", but name
  // no secret; "pass" alone is not a secret word.
  for (const char* key : {"env", "region", "team", "tier", "app.kubernetes.io/name", "author", "authors", "code-author",
                          "authority", "data-authority", "certainty", "uncertain-zone", "concert-hall", "passive",
                          "compass", "bypass-cache", "keyboard", "monkey"}) {
    EXPECT_TRUE(CheckNotSecretLike(key, "x").ok()) << key << ": " << CheckNotSecretLike(key, "x").error().message;
  }
}

// --- secret-like values -----------------------------------------------------------

TEST(SecretValueTest, RefusesPemMaterial) {
  ExpectRefusedAsSecretValue("-----BEGIN RSA PRIVATE KEY-----", "PEM key material");
  ExpectRefusedAsSecretValue("-----BEGIN CERTIFICATE-----MIIB", "PEM");
  ExpectRefusedAsSecretValue("xyz-----END OPENSSH PRIVATE KEY-----", "PEM");
}

TEST(SecretValueTest, RefusesJwts) {
  ExpectRefusedAsSecretValue("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "JSON Web Token");
  ExpectRefusedAsSecretValue("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "JSON Web Token");  // unsigned
  // Not three segments, or not base64url: not a JWT (and short enough to be ordinary).
  EXPECT_TRUE(CheckNotSecretLike("note", "eyJ.only-two").ok());
  EXPECT_TRUE(CheckNotSecretLike("note", "eyJa.b.c.d").ok());
}

TEST(SecretValueTest, RefusesWellKnownTokenPrefixes) {
  ExpectRefusedAsSecretValue("AKIAIOSFODNN7EXAMPLE", "AWS access key id");
  ExpectRefusedAsSecretValue("ASIAIOSFODNN7EXAMPLE", "AWS");
  ExpectRefusedAsSecretValue("ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "GitHub token");
  ExpectRefusedAsSecretValue("gho_16C7e42F292c6912E7710c838347Ae178B4a", "GitHub token");
  ExpectRefusedAsSecretValue("github_pat_11ABCDEFG0abcdefghijkl", "GitHub token");
  ExpectRefusedAsSecretValue("glpat-xxxxxxxxxxxxxxxxxxxx", "GitLab");
  ExpectRefusedAsSecretValue("xoxb-123456789012-abcdefghij", "Slack token");
  ExpectRefusedAsSecretValue("xoxp-123456789012-abcdefghij", "Slack token");
  ExpectRefusedAsSecretValue("sk_live_abcdefgh12345678", "Stripe secret key");
  ExpectRefusedAsSecretValue("sk-proj-abcdefghijklmnopqrstuvwx", "API secret key");
  ExpectRefusedAsSecretValue("AIzaSyA-abcdefghijklmnopqrstuvwxyz01234", "Google API key");
}

TEST(SecretValueTest, ShortOrOrdinaryValuesWithTokenPrefixesPass) {
  for (const char* v : {"sk-bratislava-1", "sk-prod", "ghp", "ghp_x", "AKIA", "akia-lowercase", "xoxb", "glpat-1"}) {
    EXPECT_TRUE(CheckNotSecretLike("note", v).ok()) << v;
  }
}

TEST(SecretValueTest, RefusesHighEntropyStrings) {
  ExpectRefusedAsSecretValue("q8Zr2LmX9vT4wK7pN3sB", "high-entropy");                      // 20 chars
  ExpectRefusedAsSecretValue("3f2a9c1e8b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f", "high-entropy");  // a hex digest
  ExpectRefusedAsSecretValue("prod-Xk29vLq8Zr2mT4wN7pB3", "high-entropy");                 // embedded token
}

TEST(SecretValueTest, LowEntropyOrUnmixedLongStringsPass) {
  EXPECT_TRUE(CheckNotSecretLike("note", "q8Zr2LmX9vT4wK7pN3s").ok());        // 19 chars: below the length floor
  EXPECT_TRUE(CheckNotSecretLike("note", "aaaaaaaaaaaaaaaaaaaa1111").ok());   // long, low entropy
  EXPECT_TRUE(CheckNotSecretLike("note", "abcdefghijklmnopqrstuvwxy").ok());  // letters only
  EXPECT_TRUE(CheckNotSecretLike("note", "12345678901234567890123").ok());    // digits only
}

TEST(SecretValueTest, OrdinaryValuesPass) {
  for (const char* v : {"", "production", "eu-west-1", "team-payments", "v2.3.1", "2026-12-04", "staging", "gold",
                        "magento-2.4.7-p3", "magento-2.4.7-p3-community", "eu-west-1-production-cluster",
                        "release-2026-12-04-hotfix1", "checkout-service-v10", "customer-facing-store-07",
                        "123e4567-e89b-12d3-a456-426614174000", "k8s-cluster-eu-central-1a"}) {
    Status s = CheckNotSecretLike("note", v);
    EXPECT_TRUE(s.ok()) << v << ": " << s.error().message;
  }
}

TEST(ShannonEntropyTest, KnownValues) {
  EXPECT_DOUBLE_EQ(ShannonEntropy(""), 0.0);
  EXPECT_DOUBLE_EQ(ShannonEntropy("aaaa"), 0.0);
  EXPECT_DOUBLE_EQ(ShannonEntropy("ab"), 1.0);
  EXPECT_DOUBLE_EQ(ShannonEntropy("abcd"), 2.0);
  EXPECT_DOUBLE_EQ(ShannonEntropy("aabb"), 1.0);
  EXPECT_NEAR(ShannonEntropy("0123456789abcdef"), 4.0, 1e-12);
}

// --- whole label sets -------------------------------------------------------------

TEST(LabelSetTest, AcceptsOrdinarySet) {
  const Labels labels{{"env", "production"},     {"region", "eu-west-1"},
                      {"team", "team-payments"}, {"app.kubernetes.io/version", "v2.3.1"},
                      {"expires", "2026-12-04"}, {"canary", ""}};
  EXPECT_TRUE(ValidateLabels(labels).ok());
  EXPECT_TRUE(ValidateLabels(Labels{}).ok());
}

TEST(LabelSetTest, AtMost64Labels) {
  Labels labels;
  for (int i = 0; i < 64; ++i) labels["k" + std::to_string(i)] = "v";
  EXPECT_TRUE(ValidateLabels(labels).ok());
  labels["k64"] = "v";
  ExpectInvalid(ValidateLabels(labels), "labels", "at most 64 labels are allowed (got 65)");
}

TEST(LabelSetTest, ErrorsNameTheKey) {
  ExpectInvalid(ValidateLabels(Labels{{"env", "-prod"}}), "labels.env", "label value must start and end");
  ExpectInvalid(ValidateLabels(Labels{{"env", std::string(64, 'v')}}), "labels.env", "at most 63");
  ExpectInvalid(ValidateLabels(Labels{{"bad key", "x"}}), "labels.bad key", "label key name may contain only");
  ExpectInvalid(ValidateLabels(Labels{{"build", "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"}}), "labels.build",
                "label value for key 'build' looks like a secret (a GitHub token)");
  ExpectInvalid(ValidateLabels(Labels{{"db_password", ""}}), "labels.db_password", "names a secret");
}

}  // namespace
}  // namespace storeplane::core
