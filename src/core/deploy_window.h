// Deploy windows and freezes: a cron-like schedule (5 fields, UTC, minute resolution), a
// window (allow or deny, environments, actions, schedule, duration) and DecideWindow(),
// the pure "may this action start in this environment at t" used by single deploys now and
// by rollouts later. No clock reads: time is Unix milliseconds passed in. Thread-safe
// (values only). See docs/CICD.md, "Deploy windows and freezes", and ADR 0010.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace storeplane::core {

inline constexpr std::int64_t kMinuteMs = 60LL * 1000;
inline constexpr std::int64_t kDayMs = 24LL * 60 * kMinuteMs;
// How far DecideWindow looks ahead for next_open_at / closes_at.
inline constexpr std::int64_t kWindowHorizonMs = 366 * kDayMs;
// The longest window: a month-long freeze.
inline constexpr std::int64_t kMaxWindowDurationMs = 31 * kDayMs;

// "minute hour day-of-month month day-of-week", UTC. Each field: '*', a number, a range
// 'a-b', a list 'a,b', a step '*/n', 'a-b/n' or 'a/n'; months may be jan..dec, days of
// the week sun..sat (0 and 7 are Sunday). Also @hourly, @daily (@midnight), @weekly,
// @monthly, @yearly (@annually). When both day fields are restricted, a day matches when
// either does (the cron rule); a field starting with '*' is unrestricted.
class CronSchedule {
 public:
  // Errors name the field: "day-of-week: 8 is out of range 0-7".
  static Result<CronSchedule> Parse(std::string_view text);

  const std::string& text() const { return text_; }
  // Whether the minute containing `t_ms` is a start.
  bool Matches(std::int64_t t_ms) const;
  // The first start s with from_ms <= s <= from_ms + horizon_ms, if any.
  std::optional<std::int64_t> NextStart(std::int64_t from_ms, std::int64_t horizon_ms) const;
  // The latest start s with at_ms - lookback_ms <= s <= at_ms, if any.
  std::optional<std::int64_t> PreviousStart(std::int64_t at_ms, std::int64_t lookback_ms) const;
  // Whether every minute of the day containing `t_ms` is a start (a "* * ..." schedule on
  // a matching day); lets a window's span jump a whole day at a time.
  bool EveryMinuteOfDay(std::int64_t t_ms) const;

 private:
  bool DayMatches(std::int64_t day) const;  // day: days since 1970-01-01

  std::string text_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1..31
  std::bitset<13> months_;   // 1..12
  std::bitset<7> weekdays_;  // 0 = Sunday
  bool days_star_ = true;
  bool weekdays_star_ = true;
};

// "30m", "8h", "14d" (m, h or d; whole numbers); more than 0 and at most 31 days.
Result<std::int64_t> ParseWindowDuration(std::string_view text);
// The shortest text ParseWindowDuration reads back to `ms` ("14d", "90m").
std::string FormatWindowDuration(std::int64_t ms);

enum class WindowKind { kAllow, kDeny };
std::string_view ToString(WindowKind kind);

struct DeployWindow {
  std::string id;  // "window/<n>", n counting from 1 in file order
  WindowKind kind = WindowKind::kDeny;
  std::set<std::string> environments;  // empty = every environment
  std::vector<std::string> actions{"deploy.request"};
  CronSchedule schedule;
  std::int64_t duration_ms = 0;
  std::string description;

  bool AppliesTo(std::string_view action, std::string_view environment) const;
  // Some start s of the schedule has s <= t < s + duration.
  bool ActiveAt(std::int64_t t_ms) const;
  // When active at t: the end of the contiguous span of activity containing t (starts that
  // overlap or touch extend it), capped at t + kWindowHorizonMs.
  std::int64_t ActiveUntil(std::int64_t t_ms) const;
  // "window/2 (Black Friday freeze)"
  std::string Name() const;
};

// The actions a window may govern: the requests that become pipeline runs.
bool IsWindowedAction(std::string_view action);

struct WindowDecision {
  bool open = true;
  std::string reason;                        // names the deciding window(s); safe to show
  std::vector<std::string> windows;          // ids of the deciding windows
  std::optional<std::int64_t> next_open_at;  // when closed: the next time it opens (horizon 366 days)
  std::optional<std::int64_t> closes_at;     // when open: the next time it closes, if within the horizon
};

// Like Argo CD's sync windows: an active deny window that applies closes; otherwise, when
// allow windows apply to (action, environment), one of them must be active; otherwise open.
WindowDecision DecideWindow(const std::vector<DeployWindow>& windows, std::string_view action,
                            std::string_view environment, std::int64_t now_ms);

}  // namespace storeplane::core
