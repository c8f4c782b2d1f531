// Label rules: keys and values that selectors can match, and refusal of anything that
// looks like a secret (the control plane must never hold store secrets).
#pragma once

#include <string_view>

#include "core/result.h"
#include "core/store.h"

namespace storeplane::core {

// Key: optional DNS-subdomain prefix and '/', then a name of 1..63 chars of
// [A-Za-z0-9._-] starting and ending alphanumeric (Kubernetes-style).
Status ValidateLabelKey(std::string_view key);
// Value: 0..63 chars of [A-Za-z0-9._-], starting and ending alphanumeric when non-empty.
Status ValidateLabelValue(std::string_view value);
// Refuses keys naming secrets (password, secret, token, apikey, private_key, credential, ...)
// and values that look like key material or high-entropy tokens. `reason` explains why.
Status CheckNotSecretLike(std::string_view key, std::string_view value);
// All of the above for a whole set; at most 64 labels.
Status ValidateLabels(const Labels& labels);

// Shannon entropy in bits per character; used by the secret heuristics.
double ShannonEntropy(std::string_view text);

}  // namespace storeplane::core
