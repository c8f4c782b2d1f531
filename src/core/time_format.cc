#include "core/time_format.h"

#include <ctime>

namespace storeplane::core {

std::string FormatRfc3339Millis(std::int64_t unix_ms) {
  const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return std::string(buf, n) + "." + std::to_string(1000 + unix_ms % 1000).substr(1) + "Z";
}

}  // namespace storeplane::core
