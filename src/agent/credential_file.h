// The agent's secrets on disk: the credential it received at enrollment (written once,
// atomically, mode 0600) and the one-time enrollment token (a file or an environment
// variable). Neither value is ever logged or passed to a command.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace storeplane::agent {

inline constexpr const char* kEnrollmentTokenEnv = "SHOP_AGENT_ENROLLMENT_TOKEN";

// 1..512 printable ASCII characters without spaces: safe to put in an HTTP header.
bool IsPlausibleSecret(std::string_view secret);

// The stored credential (surrounding whitespace trimmed); nothing when the file does not exist.
Result<std::optional<std::string>> ReadCredentialFile(const std::string& path);

// Writes `credential` to `path` atomically: a temporary file opened O_CREAT|O_EXCL with mode
// 0600, written, fsynced, renamed over `path`, then the directory fsynced.
Status WriteCredentialFile(const std::string& path, const std::string& credential);

// The enrollment token: the trimmed contents of `token_file` when set, else `env_value`
// (the value of SHOP_AGENT_ENROLLMENT_TOKEN, may be null). kNotFound when there is none.
Result<std::string> ReadEnrollmentToken(const std::string& token_file, const char* env_value);

}  // namespace storeplane::agent
