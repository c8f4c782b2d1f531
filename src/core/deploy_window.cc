#include "core/deploy_window.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <utility>

namespace storeplane::core {
namespace {

constexpr std::int64_t kHourMs = 60 * kMinuteMs;

std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

struct Civil {
  int year;
  int month;  // 1..12
  int day;    // 1..31
};

// Howard Hinnant's civil_from_days: proleptic Gregorian, days since 1970-01-01.
Civil CivilFromDays(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {static_cast<int>(y + (m <= 2 ? 1 : 0)), static_cast<int>(m), static_cast<int>(d)};
}

int WeekdayOfDays(std::int64_t z) {  // 0 = Sunday; 1970-01-01 was a Thursday
  return static_cast<int>(((z % 7) + 11) % 7);
}

constexpr std::array<std::string_view, 12> kMonthNames{"jan", "feb", "mar", "apr", "may", "jun",
                                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 7> kDayNames{"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct FieldSpec {
  std::string_view name;
  int lo;
  int hi;
  const std::string_view* names;  // names[i] is the value lo_names + i
  int names_count;
  int names_base;
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

Result<int> FieldValue(std::string_view text, const FieldSpec& spec) {
  const std::string field(spec.name);
  if (text.empty()) return Error::Invalid(field + ": a value is missing", field);
  if (spec.names != nullptr) {
    const std::string lower = Lower(text);
    for (int i = 0; i < spec.names_count; ++i) {
      if (lower == spec.names[i]) return spec.names_base + i;
    }
  }
  int value = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || p != text.data() + text.size()) {
    return Error::Invalid(field + ": '" + std::string(text.substr(0, 20)) + "' is not a number" +
                              (spec.names != nullptr ? " or a name" : ""),
                          field);
  }
  if (value < spec.lo || value > spec.hi) {
    return Error::Invalid(field + ": " + std::to_string(value) + " is out of range " + std::to_string(spec.lo) + "-" +
                              std::to_string(spec.hi),
                          field);
  }
  return value;
}

// One field into a bit mask over [spec.lo, spec.hi].
Result<std::uint64_t> ParseField(std::string_view text, const FieldSpec& spec) {
  const std::string field(spec.name);
  std::uint64_t mask = 0;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    const std::string_view item = text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    if (item.empty()) return Error::Invalid(field + ": empty entry in a list", field);
    std::string_view range = item;
    int step = 1;
    bool has_step = false;
    if (const std::size_t slash = item.find('/'); slash != std::string_view::npos) {
      range = item.substr(0, slash);
      const std::string_view step_text = item.substr(slash + 1);
      auto [p, ec] = std::from_chars(step_text.data(), step_text.data() + step_text.size(), step);
      if (step_text.empty() || ec != std::errc() || p != step_text.data() + step_text.size() || step < 1 ||
          step > spec.hi) {
        return Error::Invalid(field + ": the step after '/' must be a number from 1 to " + std::to_string(spec.hi),
                              field);
      }
      has_step = true;
    }
    int a = spec.lo;
    int b = spec.hi;
    if (range != "*") {
      const std::size_t dash = range.find('-');
      auto first = FieldValue(range.substr(0, dash), spec);
      if (!first.ok()) return first.error();
      a = *first;
      if (dash != std::string_view::npos) {
        auto last = FieldValue(range.substr(dash + 1), spec);
        if (!last.ok()) return last.error();
        b = *last;
        if (b < a) {
          return Error::Invalid(field + ": the range " + std::string(range) + " runs backwards", field);
        }
      } else if (!has_step) {
        b = a;
      }
    }
    for (int v = a; v <= b; v += step) mask |= std::uint64_t{1} << v;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return mask;
}

std::string_view Expand(std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kMacros{{
      {"@yearly", "0 0 1 1 *"},
      {"@annually", "0 0 1 1 *"},
      {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"},
      {"@daily", "0 0 * * *"},
      {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"},
  }};
  for (const auto& [name, expansion] : kMacros) {
    if (text == name) return expansion;
  }
  return text;
}

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

}  // namespace

Result<CronSchedule> CronSchedule::Parse(std::string_view text) {
  if (text.size() > 200) return Error::Invalid("schedule: longer than 200 characters", "schedule");
  const std::string_view expanded = Expand(text);
  if (!expanded.empty() && expanded.front() == '@') {
    return Error::Invalid("schedule: unknown macro (use @hourly, @daily, @weekly, @monthly or @yearly)", "schedule");
  }
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < expanded.size()) {
    while (i < expanded.size() && IsSpace(expanded[i])) ++i;
    const std::size_t begin = i;
    while (i < expanded.size() && !IsSpace(expanded[i])) ++i;
    if (i > begin) fields.push_back(expanded.substr(begin, i - begin));
  }
  if (fields.size() != 5) {
    return Error::Invalid(
        "schedule: needs 5 fields (minute hour day-of-month month day-of-week), got " + std::to_string(fields.size()),
        "schedule");
  }
  static constexpr FieldSpec kSpecs[5] = {
      {"minute", 0, 59, nullptr, 0, 0},
      {"hour", 0, 23, nullptr, 0, 0},
      {"day-of-month", 1, 31, nullptr, 0, 0},
      {"month", 1, 12, kMonthNames.data(), 12, 1},
      {"day-of-week", 0, 7, kDayNames.data(), 7, 0},
  };
  std::array<std::uint64_t, 5> masks{};
  for (std::size_t f = 0; f < 5; ++f) {
    auto mask = ParseField(fields[f], kSpecs[f]);
    if (!mask.ok()) return mask.error();
    masks[f] = *mask;
  }
  CronSchedule s;
  s.text_ = std::string(text);
  s.minutes_ = std::bitset<60>(masks[0]);
  s.hours_ = std::bitset<24>(masks[1]);
  s.days_ = std::bitset<32>(masks[2]);
  s.months_ = std::bitset<13>(masks[3]);
  std::uint64_t weekdays = masks[4];
  if ((weekdays & (std::uint64_t{1} << 7)) != 0) weekdays = (weekdays | 1U) & 0x7fU;  // 7 is Sunday too
  s.weekdays_ = std::bitset<7>(weekdays);
  s.days_star_ = fields[2].front() == '*';
  s.weekdays_star_ = fields[4].front() == '*';
  // A schedule whose days of the month never occur in its months never starts.
  if (!s.days_star_ && s.weekdays_star_) {
    static constexpr std::array<int, 13> kMaxDay{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool some = false;
    for (int m = 1; m <= 12 && !some; ++m) {
      if (!s.months_[m]) continue;
      for (int d = 1; d <= kMaxDay[m] && !some; ++d) some = s.days_[d];
    }
    if (!some) return Error::Invalid("schedule: day-of-month never occurs in the months given", "schedule");
  }
  return s;
}

bool CronSchedule::DayMatches(std::int64_t day) const {
  const Civil c = CivilFromDays(day);
  if (!months_[c.month]) return false;
  const bool dom = days_[c.day];
  const bool dow = weekdays_[WeekdayOfDays(day)];
  if (days_star_ || weekdays_star_) return dom && dow;
  return dom || dow;
}

bool CronSchedule::Matches(std::int64_t t_ms) const {
  const std::int64_t day = FloorDiv(t_ms, kDayMs);
  const std::int64_t in_day = t_ms - day * kDayMs;
  return DayMatches(day) && hours_[in_day / kHourMs] && minutes_[(in_day % kHourMs) / kMinuteMs];
}

std::optional<std::int64_t> CronSchedule::NextStart(std::int64_t from_ms, std::int64_t horizon_ms) const {
  const std::int64_t hi = from_ms + horizon_ms;
  const std::int64_t first = FloorDiv(from_ms + kMinuteMs - 1, kMinuteMs) * kMinuteMs;
  std::int64_t day = FloorDiv(first, kDayMs);
  std::int64_t in_day = first - day * kDayMs;
  for (; day * kDayMs <= hi; ++day, in_day = 0) {
    if (!DayMatches(day)) continue;
    for (auto h = static_cast<int>(in_day / kHourMs); h < 24; ++h) {
      if (!hours_[h]) continue;
      const int m0 = h == in_day / kHourMs ? static_cast<int>((in_day % kHourMs) / kMinuteMs) : 0;
      for (int m = m0; m < 60; ++m) {
        if (!minutes_[m]) continue;
        const std::int64_t s = day * kDayMs + h * kHourMs + m * kMinuteMs;
        if (s > hi) return std::nullopt;
        return s;
      }
    }
  }
  return std::nullopt;
}

std::optional<std::int64_t> CronSchedule::PreviousStart(std::int64_t at_ms, std::int64_t lookback_ms) const {
  const std::int64_t lo = at_ms - lookback_ms;
  const std::int64_t last = FloorDiv(at_ms, kMinuteMs) * kMinuteMs;
  std::int64_t day = FloorDiv(last, kDayMs);
  std::int64_t in_day = last - day * kDayMs;
  for (; (day + 1) * kDayMs > lo; --day, in_day = kDayMs - kMinuteMs) {
    if (!DayMatches(day)) continue;
    for (auto h = static_cast<int>(in_day / kHourMs); h >= 0; --h) {
      if (!hours_[h]) continue;
      const int m0 = h == in_day / kHourMs ? static_cast<int>((in_day % kHourMs) / kMinuteMs) : 59;
      for (int m = m0; m >= 0; --m) {
        if (!minutes_[m]) continue;
        const std::int64_t s = day * kDayMs + h * kHourMs + m * kMinuteMs;
        if (s < lo) return std::nullopt;
        return s;
      }
    }
  }
  return std::nullopt;
}

bool CronSchedule::EveryMinuteOfDay(std::int64_t t_ms) const {
  return minutes_.all() && hours_.all() && DayMatches(FloorDiv(t_ms, kDayMs));
}

Result<std::int64_t> ParseWindowDuration(std::string_view text) {
  const std::string problem =
      "duration must be a whole number of minutes, hours or days (30m, 8h, 14d), from 1m to 31d";
  if (text.size() < 2) return Error::Invalid(problem, "duration");
  std::int64_t count = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end - 1, count);
  if (ec != std::errc() || p != end - 1 || count <= 0 || count > 1'000'000) {
    return Error::Invalid(problem, "duration");
  }
  std::int64_t unit = 0;
  switch (text.back()) {
    case 'm': unit = kMinuteMs; break;
    case 'h': unit = kHourMs; break;
    case 'd': unit = kDayMs; break;
    default: return Error::Invalid(problem, "duration");
  }
  if (count * unit > kMaxWindowDurationMs) return Error::Invalid(problem, "duration");
  return count * unit;
}

std::string FormatWindowDuration(std::int64_t ms) {
  if (ms % kDayMs == 0) return std::to_string(ms / kDayMs) + "d";
  if (ms % kHourMs == 0) return std::to_string(ms / kHourMs) + "h";
  return std::to_string(ms / kMinuteMs) + "m";
}

std::string_view ToString(WindowKind kind) { return kind == WindowKind::kAllow ? "allow" : "deny"; }

bool IsWindowedAction(std::string_view action) {
  return action == "deploy.request" || action == "rollback.request" || action == "store.provision" ||
         action == "store.decommission" || action == "isolation.migrate";
}

bool DeployWindow::AppliesTo(std::string_view action, std::string_view environment) const {
  if (!environments.empty() && !environments.contains(std::string(environment))) return false;
  return std::find(actions.begin(), actions.end(), action) != actions.end();
}

bool DeployWindow::ActiveAt(std::int64_t t_ms) const {
  return duration_ms > 0 && schedule.PreviousStart(t_ms, duration_ms - 1).has_value();
}

std::int64_t DeployWindow::ActiveUntil(std::int64_t t_ms) const {
  const std::int64_t cap = t_ms + kWindowHorizonMs;
  std::int64_t end = t_ms;
  // The latest start at or before `end` still running there extends the span; a start at
  // exactly the previous end touches it.
  while (end <= cap) {
    if (schedule.EveryMinuteOfDay(end)) {  // its last start that day is at 23:59
      end = (FloorDiv(end, kDayMs) + 1) * kDayMs - kMinuteMs + duration_ms;
      continue;
    }
    auto s = schedule.PreviousStart(end, duration_ms - 1);
    if (!s) break;
    end = *s + duration_ms;
  }
  return std::min(end, cap);
}

std::string DeployWindow::Name() const { return description.empty() ? id : id + " (" + description + ")"; }

namespace {

struct State {
  bool open = true;
  std::string reason;
  std::vector<std::string> windows;
};

State Evaluate(const std::vector<const DeployWindow*>& applicable, std::int64_t t) {
  State state;
  std::vector<const DeployWindow*> denies;
  std::vector<const DeployWindow*> allows;
  bool allow_active = false;
  const DeployWindow* active_allow = nullptr;
  for (const DeployWindow* w : applicable) {
    if (w->kind == WindowKind::kDeny) {
      if (w->ActiveAt(t)) denies.push_back(w);
    } else {
      allows.push_back(w);
      if (!allow_active && w->ActiveAt(t)) {
        allow_active = true;
        active_allow = w;
      }
    }
  }
  auto names = [](const std::vector<const DeployWindow*>& ws) {
    std::string out;
    for (const DeployWindow* w : ws) out += (out.empty() ? "" : ", ") + w->Name();
    return out;
  };
  if (!denies.empty()) {
    state.open = false;
    state.reason =
        std::string(denies.size() == 1 ? "closed by deny window " : "closed by deny windows ") + names(denies);
    for (const DeployWindow* w : denies) state.windows.push_back(w->id);
  } else if (!allows.empty() && !allow_active) {
    state.open = false;
    state.reason = "outside every allow window: " + names(allows);
    for (const DeployWindow* w : allows) state.windows.push_back(w->id);
  } else if (allow_active) {
    state.reason = "inside allow window " + active_allow->Name();
    state.windows.push_back(active_allow->id);
  } else {
    state.reason = "no deploy window applies";
  }
  return state;
}

// The next time after t at which some applicable window starts or stops being active.
std::optional<std::int64_t> NextBoundary(const std::vector<const DeployWindow*>& applicable, std::int64_t t,
                                         std::int64_t limit) {
  std::optional<std::int64_t> best;
  for (const DeployWindow* w : applicable) {
    std::optional<std::int64_t> b;
    if (w->ActiveAt(t)) {
      b = w->ActiveUntil(t);
    } else {
      b = w->schedule.NextStart(t + 1, limit - t);
    }
    if (b && *b > t && (!best || *b < *best)) best = b;
  }
  if (best && *best > limit) return std::nullopt;
  return best;
}

}  // namespace

WindowDecision DecideWindow(const std::vector<DeployWindow>& windows, std::string_view action,
                            std::string_view environment, std::int64_t now_ms) {
  std::vector<const DeployWindow*> applicable;
  for (const DeployWindow& w : windows) {
    if (w.AppliesTo(action, environment)) applicable.push_back(&w);
  }
  WindowDecision decision;
  State now = Evaluate(applicable, now_ms);
  decision.open = now.open;
  decision.reason = std::move(now.reason);
  decision.windows = std::move(now.windows);
  if (applicable.empty()) return decision;
  const std::int64_t limit = now_ms + kWindowHorizonMs;
  std::int64_t t = now_ms;
  // Each step moves to the next start or end of some window; a few thousand steps cover a
  // year of even dense schedules (ActiveUntil merges a window's own overlapping starts).
  for (int step = 0; step < 100'000; ++step) {
    auto next = NextBoundary(applicable, t, limit);
    if (!next) break;
    t = *next;
    if (Evaluate(applicable, t).open != decision.open) {
      if (decision.open) {
        decision.closes_at = t;
      } else {
        decision.next_open_at = t;
      }
      break;
    }
  }
  return decision;
}

}  // namespace storeplane::core
