// Deploy windows (src/core/deploy_window.h): the cron parser (good and bad schedules, the
// field named in errors), UTC arithmetic across month, year and leap-day boundaries,
// activity of windows, and DecideWindow: deny beats allow, allow-only environments, the
// actions filter, next_open_at and closes_at. Also a rough cost figure for the decision.
#include "core/deploy_window.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/time_format.h"

namespace storeplane::core {
namespace {

// Unix ms of a UTC civil time (Howard Hinnant's days_from_civil).
std::int64_t Utc(int y, int mo, int d, int h = 0, int mi = 0) {
  y -= mo <= 2 ? 1 : 0;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const std::int64_t days = static_cast<std::int64_t>(era) * 146097 + doe - 719468;
  return days * kDayMs + (h * 60LL + mi) * kMinuteMs;
}

std::string Iso(std::int64_t ms) { return FormatRfc3339Millis(ms); }

CronSchedule Cron(const std::string& text) {
  auto s = CronSchedule::Parse(text);
  EXPECT_TRUE(s.ok()) << text << ": " << (s.ok() ? "" : s.error().message);
  return s.ok() ? *s : CronSchedule{};
}

DeployWindow Window(WindowKind kind, const std::string& schedule, const std::string& duration,
                    std::set<std::string> envs = {}, std::vector<std::string> actions = {"deploy.request"},
                    std::string description = {}) {
  DeployWindow w;
  w.kind = kind;
  w.schedule = Cron(schedule);
  auto d = ParseWindowDuration(duration);
  EXPECT_TRUE(d.ok()) << duration;
  w.duration_ms = d.ok() ? *d : 0;
  w.environments = std::move(envs);
  w.actions = std::move(actions);
  w.description = std::move(description);
  return w;
}

std::vector<DeployWindow> Numbered(std::vector<DeployWindow> ws) {
  for (std::size_t i = 0; i < ws.size(); ++i) ws[i].id = "window/" + std::to_string(i + 1);
  return ws;
}

TEST(CronParseTest, AcceptsTheUsualForms) {
  for (const char* text : {"* * * * *",       "0 9 * * 1-5",     "*/15 * * * *", "0 0-23/2 * * *", "5,10,20 1 1 jan *",
                           "0 9 * * MON-fri", "30 22 * DEC sun", "0 0 29 2 *",   "0 0 * * 7",      "0 0 1 * 5/1",
                           "  0   9 *  * * ", "@daily",          "@hourly",      "@weekly",        "@monthly",
                           "@yearly",         "@annually",       "@midnight",    "0\t9\t*\t*\t*",  "59 23 31 12 6"}) {
    EXPECT_TRUE(CronSchedule::Parse(text).ok()) << text;
  }
}

TEST(CronParseTest, RefusesBadSchedulesNamingTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "5 fields"},
      {"* * * *", "5 fields"},
      {"* * * * * *", "5 fields"},
      {"60 * * * *", "minute: 60 is out of range 0-59"},
      {"* 24 * * *", "hour: 24 is out of range"},
      {"* * 0 * *", "day-of-month: 0 is out of range"},
      {"* * 32 * *", "day-of-month"},
      {"* * * 13 *", "month: 13"},
      {"* * * * 8", "day-of-week: 8 is out of range 0-7"},
      {"* * * foo *", "month: 'foo' is not a number or a name"},
      {"* * * * mon-", "day-of-week: a value is missing"},
      {"5-1 * * * *", "minute: the range 5-1 runs backwards"},
      {"*/0 * * * *", "minute: the step"},
      {"*/x * * * *", "minute: the step"},
      {"1,,2 * * * *", "minute: empty entry"},
      {"@often", "unknown macro"},
      {"0 0 30 2 *", "never occurs"},
      {"0 0 31 4,6,9,11 *", "never occurs"},
  };
  for (const auto& [text, expected] : cases) {
    auto s = CronSchedule::Parse(text);
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_NE(s.error().message.find(expected), std::string::npos) << text << " -> " << s.error().message;
  }
}

TEST(CronMatchTest, FieldsAndTheDayRule) {
  // 2026-12-07 is a Monday.
  const auto weekday_nine = Cron("0 9 * * 1-5");
  EXPECT_TRUE(weekday_nine.Matches(Utc(2026, 12, 7, 9, 0)));
  EXPECT_TRUE(weekday_nine.Matches(Utc(2026, 12, 7, 9, 0) + 59'999));  // the minute, not the instant
  EXPECT_FALSE(weekday_nine.Matches(Utc(2026, 12, 7, 9, 1)));
  EXPECT_FALSE(weekday_nine.Matches(Utc(2026, 12, 6, 9, 0)));  // Sunday
  EXPECT_TRUE(Cron("0 0 * * 0").Matches(Utc(2026, 12, 6)));
  EXPECT_TRUE(Cron("0 0 * * 7").Matches(Utc(2026, 12, 6)));  // 7 is Sunday too
  EXPECT_TRUE(Cron("0 0 * * sun").Matches(Utc(2026, 12, 6)));
  // Both day fields restricted: either matches (the 13th, or any Friday).
  const auto either = Cron("0 0 13 * fri");
  EXPECT_TRUE(either.Matches(Utc(2026, 12, 13)));  // a Sunday, the 13th
  EXPECT_TRUE(either.Matches(Utc(2026, 12, 11)));  // a Friday
  EXPECT_FALSE(either.Matches(Utc(2026, 12, 12)));
  // One restricted: both must hold (the star matches every day).
  EXPECT_FALSE(Cron("0 0 13 * *").Matches(Utc(2026, 12, 11)));
  EXPECT_TRUE(Cron("0 0 */10 * *").Matches(Utc(2026, 12, 21)));
  EXPECT_FALSE(Cron("0 0 */10 * *").Matches(Utc(2026, 12, 20)));
  EXPECT_TRUE(Cron("0 0-23/2 * * *").Matches(Utc(2026, 12, 7, 22)));
  EXPECT_FALSE(Cron("0 0-23/2 * * *").Matches(Utc(2026, 12, 7, 23)));
  EXPECT_TRUE(Cron("0 0 * dec *").Matches(Utc(2026, 12, 1)));
  EXPECT_FALSE(Cron("0 0 * nov *").Matches(Utc(2026, 12, 1)));
}

TEST(CronSearchTest, NextAndPreviousAcrossMonthYearAndLeapDay) {
  const auto leap = Cron("0 12 29 2 *");
  auto next = leap.NextStart(Utc(2026, 3, 1), kWindowHorizonMs * 3);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(Iso(*next), "2028-02-29T12:00:00.000Z");
  EXPECT_FALSE(leap.NextStart(Utc(2026, 3, 1), kWindowHorizonMs).has_value());  // not within a year
  auto prev = leap.PreviousStart(Utc(2026, 3, 1), 4 * kWindowHorizonMs);
  ASSERT_TRUE(prev.has_value());
  EXPECT_EQ(Iso(*prev), "2024-02-29T12:00:00.000Z");

  const auto new_year = Cron("30 23 31 12 *");
  EXPECT_EQ(Iso(*new_year.NextStart(Utc(2026, 12, 31, 23, 31), kWindowHorizonMs)), "2027-12-31T23:30:00.000Z");
  EXPECT_EQ(Iso(*new_year.NextStart(Utc(2026, 12, 31, 23, 30), kWindowHorizonMs)), "2026-12-31T23:30:00.000Z");
  const auto first = Cron("0 0 1 * *");
  EXPECT_EQ(Iso(*first.NextStart(Utc(2026, 12, 31, 23, 59) + 1, kDayMs)), "2027-01-01T00:00:00.000Z");
  EXPECT_EQ(Iso(*first.PreviousStart(Utc(2027, 1, 1) - 1, 40 * kDayMs)), "2026-12-01T00:00:00.000Z");
  const auto last_of_month = Cron("0 0 31 * *");
  EXPECT_EQ(Iso(*last_of_month.NextStart(Utc(2027, 2, 1), kWindowHorizonMs)), "2027-03-31T00:00:00.000Z");
  // From a time inside a minute, the next start is at the next whole minute.
  EXPECT_EQ(Iso(*Cron("* * * * *").NextStart(Utc(2026, 12, 7, 9) + 1, kDayMs)), "2026-12-07T09:01:00.000Z");
  EXPECT_EQ(Iso(*Cron("* * * * *").PreviousStart(Utc(2026, 12, 7, 9) + 1, kDayMs)), "2026-12-07T09:00:00.000Z");
  // Nothing in reach.
  EXPECT_FALSE(Cron("0 0 1 1 *").PreviousStart(Utc(2026, 6, 1), 30 * kDayMs).has_value());
}

TEST(WindowDurationTest, ParsesAndFormats) {
  EXPECT_EQ(*ParseWindowDuration("30m"), 30 * kMinuteMs);
  EXPECT_EQ(*ParseWindowDuration("8h"), 8 * 60 * kMinuteMs);
  EXPECT_EQ(*ParseWindowDuration("14d"), 14 * kDayMs);
  EXPECT_EQ(*ParseWindowDuration("31d"), 31 * kDayMs);
  EXPECT_EQ(*ParseWindowDuration("44640m"), 31 * kDayMs);
  for (const char* bad : {"", "m", "0m", "-5m", "32d", "745h", "10s", "1.5h", "5 m", "h8", "99999999999d"}) {
    EXPECT_FALSE(ParseWindowDuration(bad).ok()) << bad;
  }
  EXPECT_EQ(FormatWindowDuration(14 * kDayMs), "14d");
  EXPECT_EQ(FormatWindowDuration(90 * kMinuteMs), "90m");
  EXPECT_EQ(FormatWindowDuration(8 * 60 * kMinuteMs), "8h");
}

TEST(DeployWindowTest, ActiveIsHalfOpenAndSpansMonthEnds) {
  const auto w = Window(WindowKind::kDeny, "0 22 31 12 *", "4h");
  EXPECT_FALSE(w.ActiveAt(Utc(2026, 12, 31, 21, 59)));
  EXPECT_TRUE(w.ActiveAt(Utc(2026, 12, 31, 22, 0)));
  EXPECT_TRUE(w.ActiveAt(Utc(2027, 1, 1, 1, 59) + 59'999));
  EXPECT_FALSE(w.ActiveAt(Utc(2027, 1, 1, 2, 0)));  // s + duration is outside
  EXPECT_EQ(Iso(w.ActiveUntil(Utc(2027, 1, 1))), "2027-01-01T02:00:00.000Z");
  // A 14-day freeze starting on the 20th of December.
  const auto freeze = Window(WindowKind::kDeny, "0 0 20 12 *", "14d");
  EXPECT_TRUE(freeze.ActiveAt(Utc(2027, 1, 2, 23, 59)));
  EXPECT_FALSE(freeze.ActiveAt(Utc(2027, 1, 3)));
  // Overlapping starts of one window merge into one span.
  const auto hourly = Window(WindowKind::kAllow, "0 * * * *", "90m");
  EXPECT_EQ(hourly.ActiveUntil(Utc(2026, 12, 7, 9)) - Utc(2026, 12, 7, 9), kWindowHorizonMs);
  const auto nine_to_five = Window(WindowKind::kAllow, "0 9 * * mon-fri", "8h");
  EXPECT_EQ(Iso(nine_to_five.ActiveUntil(Utc(2026, 12, 7, 10))), "2026-12-07T17:00:00.000Z");
}

TEST(DecideWindowTest, NoWindowsIsOpen) {
  auto d = DecideWindow({}, "deploy.request", "production", Utc(2026, 12, 7));
  EXPECT_TRUE(d.open);
  EXPECT_FALSE(d.next_open_at.has_value());
  EXPECT_FALSE(d.closes_at.has_value());
  EXPECT_EQ(d.reason, "no deploy window applies");
}

TEST(DecideWindowTest, AllowOnlyEnvironmentIsClosedOutsideItsWindow) {
  const auto ws = Numbered(
      {Window(WindowKind::kAllow, "0 9 * * mon-fri", "8h", {"production"}, {"deploy.request"}, "business hours")});
  // Monday 10:00: open until 17:00.
  auto d = DecideWindow(ws, "deploy.request", "production", Utc(2026, 12, 7, 10));
  EXPECT_TRUE(d.open);
  EXPECT_EQ(d.reason, "inside allow window window/1 (business hours)");
  ASSERT_TRUE(d.closes_at.has_value());
  EXPECT_EQ(Iso(*d.closes_at), "2026-12-07T17:00:00.000Z");
  // Friday 18:00: closed until Monday 09:00.
  d = DecideWindow(ws, "deploy.request", "production", Utc(2026, 12, 11, 18));
  EXPECT_FALSE(d.open);
  EXPECT_EQ(d.reason, "outside every allow window: window/1 (business hours)");
  EXPECT_EQ(d.windows, std::vector<std::string>{"window/1"});
  ASSERT_TRUE(d.next_open_at.has_value());
  EXPECT_EQ(Iso(*d.next_open_at), "2026-12-14T09:00:00.000Z");
  // Other environments and other actions are not concerned.
  EXPECT_TRUE(DecideWindow(ws, "deploy.request", "staging", Utc(2026, 12, 11, 18)).open);
  EXPECT_TRUE(DecideWindow(ws, "rollback.request", "production", Utc(2026, 12, 11, 18)).open);
}

TEST(DecideWindowTest, DenyBeatsAllow) {
  const auto ws = Numbered({
      Window(WindowKind::kAllow, "0 9 * * mon-fri", "8h", {"production"}),
      Window(WindowKind::kDeny, "0 0 24 12 *", "3d", {}, {"deploy.request", "rollback.request"}, "holidays"),
  });
  // Thursday 24 December 2026, 10:00: inside the allow window and the freeze.
  auto d = DecideWindow(ws, "deploy.request", "production", Utc(2026, 12, 24, 10));
  EXPECT_FALSE(d.open);
  EXPECT_EQ(d.reason, "closed by deny window window/2 (holidays)");
  // The freeze ends on Sunday the 27th at 00:00; the allow window reopens on Monday 09:00.
  EXPECT_EQ(Iso(*d.next_open_at), "2026-12-28T09:00:00.000Z");
  // The freeze names rollbacks too, and no allow window covers them: open when it ends.
  d = DecideWindow(ws, "rollback.request", "production", Utc(2026, 12, 24, 10));
  EXPECT_FALSE(d.open);
  EXPECT_EQ(Iso(*d.next_open_at), "2026-12-27T00:00:00.000Z");
  // Staging: only the freeze applies.
  d = DecideWindow(ws, "deploy.request", "staging", Utc(2026, 12, 23, 10));
  EXPECT_TRUE(d.open);
  EXPECT_EQ(Iso(*d.closes_at), "2026-12-24T00:00:00.000Z");
}

TEST(DecideWindowTest, OverlappingDeniesMustAllEnd) {
  const auto ws = Numbered({
      Window(WindowKind::kDeny, "0 0 1 12 *", "10d", {}, {"deploy.request"}, "a"),
      Window(WindowKind::kDeny, "0 0 5 12 *", "10d", {}, {"deploy.request"}, "b"),
  });
  auto d = DecideWindow(ws, "deploy.request", "production", Utc(2026, 12, 6));
  EXPECT_FALSE(d.open);
  EXPECT_EQ(d.reason, "closed by deny windows window/1 (a), window/2 (b)");
  EXPECT_EQ(Iso(*d.next_open_at), "2026-12-15T00:00:00.000Z");
}

TEST(DecideWindowTest, NeverOpenWithinTheHorizonHasNoNextOpening) {
  const auto ws = Numbered({Window(WindowKind::kDeny, "* * * * *", "1m")});
  auto d = DecideWindow(ws, "deploy.request", "production", Utc(2026, 12, 7, 12, 34) + 5'000);
  EXPECT_FALSE(d.open);
  EXPECT_FALSE(d.next_open_at.has_value());
  // An allow window that never starts within a year.
  const auto leap = Numbered({Window(WindowKind::kAllow, "0 0 29 2 *", "1d")});
  d = DecideWindow(leap, "deploy.request", "production", Utc(2026, 3, 1));
  EXPECT_FALSE(d.open);
  EXPECT_FALSE(d.next_open_at.has_value());
  d = DecideWindow(leap, "deploy.request", "production", Utc(2027, 3, 1));
  EXPECT_EQ(Iso(*d.next_open_at), "2028-02-29T00:00:00.000Z");
}

TEST(DecideWindowTest, ActionsFilterAndIds) {
  EXPECT_TRUE(IsWindowedAction("deploy.request"));
  EXPECT_TRUE(IsWindowedAction("rollback.request"));
  EXPECT_FALSE(IsWindowedAction("operation.run.cache.flush"));
  EXPECT_FALSE(IsWindowedAction("store.read"));
  const auto ws = Numbered({Window(WindowKind::kDeny, "* * * * *", "1m", {}, {"store.provision"})});
  EXPECT_TRUE(DecideWindow(ws, "deploy.request", "production", Utc(2026, 12, 7)).open);
  EXPECT_FALSE(DecideWindow(ws, "store.provision", "production", Utc(2026, 12, 7)).open);
}

// Not a benchmark: a figure for the report and a guard against a quadratic slip. The worst
// realistic case is a dense allow schedule with a long freeze over it.
TEST(DecideWindowTest, CostOfADecision) {
  const auto ws = Numbered({
      Window(WindowKind::kAllow, "0 9 * * mon-fri", "8h", {"production"}),
      Window(WindowKind::kDeny, "0 0 15 12 *", "31d", {}, {"deploy.request"}, "year-end freeze"),
      Window(WindowKind::kDeny, "*/5 * * * *", "2m", {"staging"}),
  });
  const int kRounds = 200;
  const auto started = std::chrono::steady_clock::now();
  int closed = 0;
  for (int i = 0; i < kRounds; ++i) {
    closed += DecideWindow(ws, "deploy.request", "production", Utc(2026, 12, 20, 10) + i * kMinuteMs).open ? 0 : 1;
  }
  const auto elapsed = std::chrono::steady_clock::now() - started;
  const double us = std::chrono::duration<double, std::micro>(elapsed).count() / kRounds;
  EXPECT_EQ(closed, kRounds);
  std::printf("DecideWindow (freeze over business hours, next_open_at 4 weeks ahead): %.1f us per decision\n", us);
  const auto dense_started = std::chrono::steady_clock::now();
  auto d = DecideWindow(Numbered({Window(WindowKind::kDeny, "* * * * *", "1m")}), "deploy.request", "production",
                        Utc(2026, 12, 7));
  const double dense_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - dense_started).count();
  EXPECT_FALSE(d.next_open_at.has_value());
  std::printf("DecideWindow (every-minute freeze, a year searched): %.2f ms\n", dense_ms);
  EXPECT_LT(us, 5000.0);  // generous: shared, sanitized or debug builds
}

}  // namespace
}  // namespace storeplane::core
