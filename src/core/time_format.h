// Time as text: RFC 3339 UTC timestamps with milliseconds, for API bodies and logs.
// Pure: the time is passed in as Unix milliseconds.
#pragma once

#include <cstdint>
#include <string>

namespace storeplane::core {

// 1733340000123 -> "2024-12-04T19:20:00.123Z".
std::string FormatRfc3339Millis(std::int64_t unix_ms);

}  // namespace storeplane::core
