#include "agent/agent_log.h"

#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <mutex>

#include "core/time_format.h"

namespace storeplane::agent {
namespace {

std::mutex& SinkMutex() {
  static std::mutex mutex;
  return mutex;
}

std::function<void(std::string_view)>& Sink() {
  static std::function<void(std::string_view)> sink;
  return sink;
}

std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "info";
}

}  // namespace

std::string FormatLogLine(std::int64_t unix_ms, LogLevel level, std::string_view msg, const LogFields& fields) {
  boost::json::object line;
  line["time"] = core::FormatRfc3339Millis(unix_ms);
  line["level"] = LevelName(level);
  line["msg"] = msg;
  for (const auto& [key, value] : fields) {
    if (const auto* text = std::get_if<std::string>(&value)) {
      line[key] = *text;
    } else if (const auto* number = std::get_if<std::int64_t>(&value)) {
      line[key] = *number;
    } else {
      line[key] = std::get<bool>(value);
    }
  }
  return boost::json::serialize(line);
}

void Log(LogLevel level, std::string_view msg, const LogFields& fields) {
  const auto now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  std::string line;
  try {
    line = FormatLogLine(now_ms, level, msg, fields);
  } catch (...) {
    return;  // out of memory: the log line is lost, nothing else
  }
  std::lock_guard lock(SinkMutex());
  if (Sink()) {
    Sink()(line);
    return;
  }
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

void SetLogSink(std::function<void(std::string_view line)> sink) {
  std::lock_guard lock(SinkMutex());
  Sink() = std::move(sink);
}

}  // namespace storeplane::agent
