// Structured logs: one JSON object per line on stderr (spdlog underneath). Callers pass
// fields as a Boost.JSON object; secrets (tokens, Authorization) must never be passed.
#pragma once

#include <boost/json/object.hpp>
#include <string>
#include <string_view>

namespace storeplane::server::log {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError };

// Configures the process-wide logger; level is "trace".."error".
void Init(const std::string& level);
bool Enabled(Level level);
void Write(Level level, std::string_view message, boost::json::object fields = {});

inline void Info(std::string_view message, boost::json::object fields = {}) {
  Write(Level::kInfo, message, std::move(fields));
}
inline void Warn(std::string_view message, boost::json::object fields = {}) {
  Write(Level::kWarn, message, std::move(fields));
}
inline void Error(std::string_view message, boost::json::object fields = {}) {
  Write(Level::kError, message, std::move(fields));
}
void Flush();

}  // namespace storeplane::server::log
