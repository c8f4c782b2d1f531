// Label rules: keys and values that selectors can match, and refusal of anything that
// looks like a secret (the control plane must never hold store secrets).
#pragma once

#include <cstddef>
#include <string_view>

#include "core/result.h"
#include "core/store.h"

namespace storeplane::core {

inline constexpr std::size_t kMaxLabels = 64;
inline constexpr std::size_t kMaxLabelNameLength = 63;     // key name part, and values
inline constexpr std::size_t kMaxLabelPrefixLength = 253;  // a DNS subdomain

// Errors name the field "labels.<key>" (escaped and shortened when the key itself is
// unprintable). ValidateLabelValue does not know the key, so its field is empty, and no
// message ever echoes a value.

// Key: optional DNS-subdomain prefix and '/', then a name of 1..63 chars of
// [A-Za-z0-9._-] starting and ending alphanumeric (Kubernetes-style).
Status ValidateLabelKey(std::string_view key);
// Value: 0..63 chars of [A-Za-z0-9._-], starting and ending alphanumeric when non-empty.
Status ValidateLabelValue(std::string_view value);
// Refuses keys naming secrets (password, secret, token, apikey, private_key, credential, ...)
// and values that look like key material or high-entropy tokens; the message says which
// rule matched, never the value. Deliberately conservative: see labels.cc for the words,
// the accepted false positives ("author", "certain") and the value heuristics.
Status CheckNotSecretLike(std::string_view key, std::string_view value);
// All of the above for a whole set; at most 64 labels. Checks each key, then the secret
// heuristics, then the value, stopping at the first problem.
Status ValidateLabels(const Labels& labels);

// Shannon entropy in bits per character; used by the secret heuristics.
double ShannonEntropy(std::string_view text);

}  // namespace storeplane::core
