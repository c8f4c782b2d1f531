// The policy file (YAML, format version 1) into core::Policy: strict parsing (unknown keys,
// actions, roles and environments are errors), then core::ValidatePolicy. Every error names
// the file and, where the YAML gives one, the line: "policy.yaml:7: unknown action 'x'".
// The format is documented in docs/CONTROL_PLANE_AUTHORITY.md. Thread-safe (no shared state);
// yaml-cpp's exceptions are caught here and never escape.
#pragma once

#include <string>
#include <string_view>

#include "core/authority.h"
#include "core/result.h"
#include "core/store.h"

namespace storeplane::server {

// Reads and parses `path`; errors name `path`. source_hash is the hex SHA-256 of the bytes read.
Result<core::Policy> LoadPolicyFile(const std::string& path);
Result<core::Policy> LoadPolicyFile(const std::string& path, const core::EnvironmentSet& environments);

// Parses policy text; errors name `name_for_errors`. The environments default to
// production, staging and development; the server passes its configured set.
Result<core::Policy> ParsePolicyText(std::string_view text, const std::string& name_for_errors);
Result<core::Policy> ParsePolicyText(std::string_view text, const std::string& name_for_errors,
                                     const core::EnvironmentSet& environments);

// The built-in default policy, byte for byte the same as config/policy.yaml (a test
// checks it). Used when no policy file is configured.
const std::string& DefaultPolicyText();

}  // namespace storeplane::server
