// Run requests (src/server/run_requests.h) as far as deploy windows touch them: the
// break_glass member of request bodies, the reason's checks, the 409 for a closed window,
// and the approval rule of a break-glass change.
#include "server/run_requests.h"

#include <gtest/gtest.h>

#include <string>

namespace storeplane::server {
namespace {

TEST(RunRequestBreakGlassTest, DecodesTheReasonForEveryKind) {
  auto deploy = DecodeRunRequest(core::RunKind::kDeploy,
                                 R"({"release": "r1", "break_glass": {"reason": "INC-1 checkout is down"}})");
  ASSERT_TRUE(deploy.ok()) << deploy.error().message;
  EXPECT_EQ(deploy->break_glass_reason, "INC-1 checkout is down");
  auto plain = DecodeRunRequest(core::RunKind::kDeploy, R"({"release": "r1"})");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->break_glass_reason.has_value());
  for (auto kind : core::AllRunKinds()) {
    std::string body = R"({"break_glass": {"reason": "INC-1 checkout is down"})";
    if (kind == core::RunKind::kDeploy) body += R"(, "release": "r1")";
    if (kind == core::RunKind::kIsolationMigration) body += R"(, "isolation_mode": "isolated")";
    body += "}";
    auto decoded = DecodeRunRequest(kind, body);
    ASSERT_TRUE(decoded.ok()) << core::ToString(kind) << ": " << decoded.error().message;
    EXPECT_EQ(decoded->break_glass_reason, "INC-1 checkout is down");
  }
}

TEST(RunRequestBreakGlassTest, RefusesBadBreakGlassMembers) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"release": "r1", "break_glass": "now"})", "break_glass must be an object"},
      {R"({"release": "r1", "break_glass": {}})", "break_glass needs a reason"},
      {R"({"release": "r1", "break_glass": {"reason": "short"}})", "10 to 500 bytes"},
      {R"({"release": "r1", "break_glass": {"reason": "INC-1 checkout", "by": "me"}})", "by"},
      {R"({"release": "r1", "break_glass": {"reason": "line one\nline two"}})", "control characters"},
      {R"({"release": "r1", "break_glass": {"reason": "token AKIAIOSFODNN7EXAMPLE leaked"}})", "looks like a secret"},
  };
  for (const auto& [body, expected] : cases) {
    auto decoded = DecodeRunRequest(core::RunKind::kDeploy, body);
    ASSERT_FALSE(decoded.ok()) << body;
    EXPECT_EQ(decoded.error().code, ErrorCode::kInvalidArgument) << body;
    EXPECT_NE(decoded.error().message.find(expected), std::string::npos) << body << " -> " << decoded.error().message;
  }
  EXPECT_TRUE(ValidateBreakGlassReason("password reset page broken, see https://jira.example.com/INC-4711").ok());
  EXPECT_FALSE(ValidateBreakGlassReason(std::string(501, 'a')).ok());
}

TEST(RunRequestBreakGlassTest, ClosedWindowErrorNamesTheWindowAndTheOpening) {
  core::WindowDecision closed;
  closed.open = false;
  closed.reason = "closed by deny window window/2 (freeze)";
  closed.next_open_at = 1798761600000;  // 2027-01-01T00:00:00Z
  auto error = WindowClosedError(closed, "deploy.request", "production");
  EXPECT_EQ(error.code, ErrorCode::kConflict);
  EXPECT_NE(error.message.find("deploy.request in production is outside its deploy window (closed by deny window "
                               "window/2 (freeze)); it opens at 2027-01-01T00:00:00.000Z"),
            std::string::npos)
      << error.message;
  closed.next_open_at.reset();
  EXPECT_NE(WindowClosedError(closed, "deploy.request", "production").message.find("does not open within 366 days"),
            std::string::npos);
}

TEST(RunRequestBreakGlassTest, TheBreakGlassRuleTakesTheLargerCountAndNeedsAnApproverRole) {
  core::Policy policy;
  core::Role approver{"approver", "", {core::Rule{"approver/allow/1", {"change.approve"}, {}, {}}}, {}};
  policy.roles["approver"] = approver;
  auto rule = BreakGlassRule(policy, nullptr);
  ASSERT_TRUE(rule.ok()) << rule.error().message;
  EXPECT_EQ(rule->id, "break-glass");
  EXPECT_EQ(rule->approvals, 1);
  core::ApprovalRule normal;
  normal.approvals = 2;
  EXPECT_EQ(BreakGlassRule(policy, &normal)->approvals, 2);
  policy.roles.clear();
  auto unavailable = BreakGlassRule(policy, nullptr);
  ASSERT_FALSE(unavailable.ok());
  EXPECT_EQ(unavailable.error().code, ErrorCode::kConflict);
}

}  // namespace
}  // namespace storeplane::server
