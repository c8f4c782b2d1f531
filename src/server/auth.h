// Bearer-token authentication. Tokens are 32 random bytes (OpenSSL CSPRNG) shown once as
// "spt_" + base64url; only their SHA-256 (hex) is stored. Tokens are never logged.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace storeplane::server {

// A new random operator token text: "spt_" + 43 base64url characters.
std::string GenerateToken();
// The same shape with another prefix: "spe_" enrollment tokens, "spa_" agent credentials.
std::string GenerateSecret(std::string_view prefix);
// Hex SHA-256 of `text`.
std::string Sha256Hex(std::string_view text);
// Hex of `bytes` random bytes (request ids and the like).
std::string RandomHex(std::size_t bytes);

// Extracts the token from an "Authorization: Bearer <token>" header value.
std::optional<std::string> BearerToken(std::string_view authorization_header);

}  // namespace storeplane::server
