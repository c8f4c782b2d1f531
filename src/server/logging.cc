#include "server/logging.h"

#include "core/time_format.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/json/serialize.hpp>
#include <chrono>

namespace storeplane::server::log {
namespace {

std::shared_ptr<spdlog::logger>& Logger() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = std::make_shared<spdlog::logger>("storeplaned", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_pattern("%v");
    l->set_level(spdlog::level::info);
    l->flush_on(spdlog::level::trace);
    return l;
  }();
  return logger;
}

spdlog::level::level_enum ToSpd(Level level) {
  switch (level) {
    case Level::kTrace: return spdlog::level::trace;
    case Level::kDebug: return spdlog::level::debug;
    case Level::kInfo: return spdlog::level::info;
    case Level::kWarn: return spdlog::level::warn;
    case Level::kError: return spdlog::level::err;
  }
  return spdlog::level::info;
}

std::string_view Name(Level level) {
  switch (level) {
    case Level::kTrace: return "trace";
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

std::string Timestamp() {
  const auto now = std::chrono::system_clock::now();
  return core::FormatRfc3339Millis(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
}

}  // namespace

void Init(const std::string& level) { Logger()->set_level(spdlog::level::from_str(level)); }

bool Enabled(Level level) { return Logger()->should_log(ToSpd(level)); }

void Write(Level level, std::string_view message, boost::json::object fields) {
  if (!Enabled(level)) return;
  boost::json::object line;
  line.reserve(fields.size() + 3);
  line["ts"] = Timestamp();
  line["level"] = Name(level);
  line["msg"] = message;
  for (auto& kv : fields) line[kv.key()] = std::move(kv.value());
  Logger()->log(ToSpd(level), "{}", boost::json::serialize(line));
}

void Flush() { Logger()->flush(); }

}  // namespace storeplane::server::log
