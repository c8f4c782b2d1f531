#include "core/labels.h"

#include <array>
#include <cmath>
#include <cstddef>
#include <optional>
#include <string>

namespace storeplane::core {
namespace {

constexpr char kNeverStoresSecrets[] = "storeplane never stores store secrets";

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsNameChar(char c) { return IsAlnum(c) || c == '.' || c == '_' || c == '-'; }
bool IsBase64UrlChar(char c) { return IsAlnum(c) || c == '_' || c == '-'; }
bool IsPrintableAscii(char c) { return c >= 0x20 && c < 0x7f; }

std::string HexByte(char c) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const auto b = static_cast<unsigned char>(c);
  return std::string("0x") + kHex[b >> 4] + kHex[b & 0xf];
}

std::string DescribeByte(char c) {
  if (IsPrintableAscii(c)) return std::string("'") + c + "'";
  return "byte " + HexByte(c);
}

// "labels.<key>" for error fields. A key that could be valid is used as is; anything
// else (control bytes, non-ASCII, absurd length) is escaped and cut short so the field
// stays printable and bounded.
std::string LabelField(std::string_view key) {
  constexpr std::size_t kMaxVerbatim = kMaxLabelPrefixLength + 1 + kMaxLabelNameLength;
  bool verbatim = key.size() <= kMaxVerbatim;
  for (char c : key) verbatim = verbatim && IsPrintableAscii(c);
  if (verbatim) return "labels." + std::string(key);
  std::string out = "labels.";
  constexpr std::size_t kMaxEscaped = 64;
  for (std::size_t i = 0; i < key.size() && i < kMaxEscaped; ++i) {
    out += IsPrintableAscii(key[i]) ? std::string(1, key[i]) : "\\x" + HexByte(key[i]).substr(2);
  }
  if (key.size() > kMaxEscaped) out += "...";
  return out;
}

// Checks a Kubernetes label name (the part after the optional prefix), or a value when
// `what` says so. Empty is handled by the caller.
std::optional<std::string> NameProblem(std::string_view text, std::string_view what, bool echo_chars) {
  if (text.size() > kMaxLabelNameLength) {
    return std::string(what) + " must be at most 63 characters (got " + std::to_string(text.size()) + ")";
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (!IsNameChar(text[i])) {
      // Values are never echoed: a value refused for its characters may be a secret.
      std::string found = echo_chars ? "found " + DescribeByte(text[i]) + " at position " + std::to_string(i)
                                     : "invalid character at position " + std::to_string(i);
      return std::string(what) + " may contain only letters, digits, '.', '_' and '-': " + found;
    }
  }
  if (!IsAlnum(text.front()) || !IsAlnum(text.back())) {
    return std::string(what) + " must start and end with a letter or digit";
  }
  return std::nullopt;
}

std::optional<std::string> PrefixProblem(std::string_view prefix) {
  if (prefix.empty()) return "label key prefix before '/' must not be empty";
  if (prefix.size() > kMaxLabelPrefixLength) {
    return "label key prefix must be at most 253 characters (got " + std::to_string(prefix.size()) + ")";
  }
  constexpr char kRule[] =
      "label key prefix must be a DNS subdomain: lowercase letters, digits, '-' and '.', each "
      "dot-separated part 1..63 characters starting and ending with a letter or digit";
  std::size_t start = 0;
  while (start <= prefix.size()) {
    std::size_t dot = prefix.find('.', start);
    if (dot == std::string_view::npos) dot = prefix.size();
    const std::string_view part = prefix.substr(start, dot - start);
    if (part.empty() || part.size() > 63) return kRule;
    for (char c : part) {
      const bool ok = (c >= 'a' && c <= 'z') || IsDigit(c) || c == '-';
      if (!ok) return kRule;
    }
    if (part.front() == '-' || part.back() == '-') return kRule;
    start = dot + 1;
  }
  return std::nullopt;
}

// --- secret-like keys -------------------------------------------------------------------

std::string NormalizeKey(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (char c : key) {
    if (c == '-' || c == '_' || c == '.' || c == '/') continue;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

// Words that name secrets, matched as substrings of the normalized key (lowercase, with
// '-', '_', '.' and '/' removed, so "db_password", "API-Key" and "ssl.cert" all match).
// The whole key is checked, prefix included.
constexpr std::array<std::string_view, 17> kSecretKeyWords = {
    "password", "passwd",    "passphrase", "pwd",           "secret",           "token",
    "apikey",   "accesskey", "privatekey", "privkey",       "credential",       "auth",
    "cert",     "sshkey",    "signingkey", "encryptionkey", "connectionstring",
};

// Ordinary words that contain a secret word; a match inside one of them is ignored:
//   "auth" inside "author", "authors", "authority", "authored" (ownership, not secrets),
//          but NOT "authorization"/"authorisation"/"authorize" (those carry credentials);
//   "cert" inside "certain"/"uncertain" and "concert".
// Any other key containing a word above is refused, even if innocent ("auth_mode"): a
// false positive costs the operator a rename, a false negative would put a store secret
// in the control plane.
bool IsBenignOccurrence(std::string_view word, std::string_view norm, std::size_t pos) {
  if (word == "auth") {
    if (norm.substr(pos, 6) != "author") return false;
    const std::string_view rest = norm.substr(pos + 6);
    return !(rest.starts_with("iz") || rest.starts_with("is"));
  }
  if (word == "cert") {
    if (norm.substr(pos, 7) == "certain") return true;
    return pos >= 3 && norm.substr(pos - 3, 7) == "concert";
  }
  return false;
}

std::optional<std::string_view> SecretKeyWord(std::string_view key) {
  const std::string norm = NormalizeKey(key);
  for (std::string_view word : kSecretKeyWords) {
    for (std::size_t pos = norm.find(word); pos != std::string::npos; pos = norm.find(word, pos + 1)) {
      if (!IsBenignOccurrence(word, norm, pos)) return word;
    }
  }
  return std::nullopt;
}

// --- secret-like values ------------------------------------------------------------------

bool LooksLikePem(std::string_view v) {
  return v.find("-----BEGIN") != std::string_view::npos || v.find("-----END") != std::string_view::npos ||
         v.find("PRIVATE KEY") != std::string_view::npos;
}

// header.payload.signature, base64url, the header starting with eyJ ('{"' encoded).
bool LooksLikeJwt(std::string_view v) {
  if (!v.starts_with("eyJ")) return false;
  std::array<std::size_t, 3> lengths{};
  std::size_t segment = 0;
  for (char c : v) {
    if (c == '.') {
      if (++segment > 2) return false;
    } else if (IsBase64UrlChar(c) || c == '=') {
      ++lengths[segment];
    } else {
      return false;
    }
  }
  return segment == 2 && lengths[0] > 0 && lengths[1] > 0;
}

struct KnownPrefix {
  std::string_view prefix;
  std::size_t min_rest;  // characters after the prefix, so short ordinary words pass
  bool upper_only;       // the rest is [A-Z0-9] only (AWS key ids)
  std::string_view what;
};

constexpr std::array<KnownPrefix, 20> kKnownPrefixes = {{
    {"AKIA", 12, true, "an AWS access key id"},
    {"ASIA", 12, true, "an AWS temporary access key id"},
    {"ghp_", 8, false, "a GitHub token"},
    {"gho_", 8, false, "a GitHub token"},
    {"ghu_", 8, false, "a GitHub token"},
    {"ghs_", 8, false, "a GitHub token"},
    {"ghr_", 8, false, "a GitHub token"},
    {"github_pat_", 8, false, "a GitHub token"},
    {"glpat-", 8, false, "a GitLab access token"},
    {"xoxb-", 8, false, "a Slack token"},
    {"xoxp-", 8, false, "a Slack token"},
    {"xoxa-", 8, false, "a Slack token"},
    {"xoxr-", 8, false, "a Slack token"},
    {"xoxs-", 8, false, "a Slack token"},
    {"sk_live_", 8, false, "a Stripe secret key"},
    {"sk_test_", 8, false, "a Stripe secret key"},
    {"rk_live_", 8, false, "a Stripe secret key"},
    // "sk-" alone would refuse ordinary values such as "sk-bratislava-1" (Slovakia), so
    // only long token-shaped tails count.
    {"sk-", 20, false, "an API secret key"},
    {"AIza", 30, false, "a Google API key"},
    {"npm_", 30, false, "an npm token"},
}};

std::optional<std::string_view> KnownTokenPrefix(std::string_view v) {
  for (const KnownPrefix& p : kKnownPrefixes) {
    if (!v.starts_with(p.prefix)) continue;
    const std::string_view rest = v.substr(p.prefix.size());
    if (rest.size() < p.min_rest) continue;
    bool shaped = true;
    for (char c : rest) {
      shaped = shaped && (p.upper_only ? ((c >= 'A' && c <= 'Z') || IsDigit(c)) : IsBase64UrlChar(c));
    }
    if (shaped) return p.what;
  }
  return std::nullopt;
}

// Generated tokens. The rule as first specified (length >= 20, >= 3.5 bits/char, letters
// and digits) alone refuses ordinary values: "checkout-service-v10" has 3.65 bits/char and
// "eu-west-1-production-cluster" 3.73, because any string of ~20 mostly distinct letters
// scores that high. So a value must also contain an unbroken run of >= 16 letters/digits
// that itself mixes letters and digits: generated keys are long unbroken alphanumeric runs,
// human values are short words joined by '-', '.' or '_'. Hex digests (a git sha) are
// refused, since many API keys have exactly that shape. A dashed UUID passes (its longest
// run is 12): UUIDs are ordinary identifiers; keys naming them as secrets are refused anyway.
bool LooksHighEntropy(std::string_view v) {
  constexpr std::size_t kMinLength = 20;
  constexpr double kMinBitsPerChar = 3.5;
  constexpr std::size_t kMinRun = 16;
  if (v.size() < kMinLength) return false;
  bool digit = false;
  bool letter = false;
  bool long_mixed_run = false;
  std::size_t run = 0;
  bool run_digit = false;
  bool run_letter = false;
  for (char c : v) {
    digit = digit || IsDigit(c);
    letter = letter || IsLetter(c);
    if (IsAlnum(c)) {
      ++run;
      run_digit = run_digit || IsDigit(c);
      run_letter = run_letter || IsLetter(c);
      long_mixed_run = long_mixed_run || (run >= kMinRun && run_digit && run_letter);
    } else {
      run = 0;
      run_digit = run_letter = false;
    }
  }
  return digit && letter && long_mixed_run && ShannonEntropy(v) >= kMinBitsPerChar;
}

std::optional<std::string_view> SecretValueReason(std::string_view v) {
  if (LooksLikePem(v)) return "PEM key material";
  if (LooksLikeJwt(v)) return "a JSON Web Token";
  if (std::optional<std::string_view> what = KnownTokenPrefix(v)) return what;
  if (LooksHighEntropy(v)) return "a high-entropy string, like a generated token or key";
  return std::nullopt;
}

}  // namespace

Status ValidateLabelKey(std::string_view key) {
  const std::string field = LabelField(key);
  if (key.empty()) return Error::Invalid("label key must not be empty", field);
  std::string_view name = key;
  const std::size_t slash = key.find('/');
  if (slash != std::string_view::npos) {
    if (key.find('/', slash + 1) != std::string_view::npos) {
      return Error::Invalid("label key may contain at most one '/', between prefix and name", field);
    }
    if (std::optional<std::string> problem = PrefixProblem(key.substr(0, slash))) {
      return Error::Invalid(*problem, field);
    }
    name = key.substr(slash + 1);
  }
  if (name.empty()) return Error::Invalid("label key name (after any prefix) must not be empty", field);
  if (std::optional<std::string> problem = NameProblem(name, "label key name", /*echo_chars=*/true)) {
    return Error::Invalid(*problem, field);
  }
  return Status::Ok();
}

Status ValidateLabelValue(std::string_view value) {
  if (value.empty()) return Status::Ok();
  if (std::optional<std::string> problem = NameProblem(value, "label value", /*echo_chars=*/false)) {
    return Error::Invalid(*problem);
  }
  return Status::Ok();
}

Status CheckNotSecretLike(std::string_view key, std::string_view value) {
  if (std::optional<std::string_view> word = SecretKeyWord(key)) {
    return Error::Invalid("label key '" + LabelField(key).substr(7) + "' looks like it names a secret (it contains '" +
                              std::string(*word) + "'); " + kNeverStoresSecrets,
                          LabelField(key));
  }
  if (std::optional<std::string_view> reason = SecretValueReason(value)) {
    return Error::Invalid("label value for key '" + LabelField(key).substr(7) + "' looks like a secret (" +
                              std::string(*reason) + "); " + kNeverStoresSecrets,
                          LabelField(key));
  }
  return Status::Ok();
}

Status ValidateLabels(const Labels& labels) {
  if (labels.size() > kMaxLabels) {
    return Error::Invalid("at most 64 labels are allowed (got " + std::to_string(labels.size()) + ")", "labels");
  }
  for (const auto& [key, value] : labels) {
    if (Status s = ValidateLabelKey(key); !s) return s;
    // Secrets first: a refusal for looking like a secret is the more useful reason.
    if (Status s = CheckNotSecretLike(key, value); !s) return s;
    if (Status s = ValidateLabelValue(value); !s) {
      return Error::Invalid(s.error().message, LabelField(key));
    }
  }
  return Status::Ok();
}

double ShannonEntropy(std::string_view text) {
  if (text.empty()) return 0.0;
  std::array<std::size_t, 256> counts{};
  for (char c : text) ++counts[static_cast<unsigned char>(c)];
  const double n = static_cast<double>(text.size());
  double bits = 0.0;
  for (std::size_t count : counts) {
    if (count == 0) continue;
    const double p = static_cast<double>(count) / n;
    bits -= p * std::log2(p);
  }
  return bits;
}

}  // namespace storeplane::core
