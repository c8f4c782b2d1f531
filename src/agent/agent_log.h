// The shop agent's log: one JSON object per line on stderr with time, level, msg and a few
// safe fields (operation id and name, outcome, code, duration, HTTP status). Callers never
// pass command output, the credential or the enrollment token.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace storeplane::agent {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

using LogValue = std::variant<std::string, std::int64_t, bool>;
using LogFields = std::vector<std::pair<std::string, LogValue>>;

// {"time":"2026-12-04T10:00:00.000Z","level":"info","msg":"...", <fields>}
std::string FormatLogLine(std::int64_t unix_ms, LogLevel level, std::string_view msg, const LogFields& fields);

void Log(LogLevel level, std::string_view msg, const LogFields& fields = {});

// Replaces where lines go (default: stderr); tests capture them. An empty sink restores stderr.
void SetLogSink(std::function<void(std::string_view line)> sink);

}  // namespace storeplane::agent
