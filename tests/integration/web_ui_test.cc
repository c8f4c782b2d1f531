// The web UI as storeplaned serves it (handlers/ui_handler.cc): the embedded files at /ui/,
// without a token, with their content types, the strict Content-Security-Policy and the other
// headers on every answer, ETag revalidation, 404 for what is not embedded, and the redirects.
// The pages themselves are tested in Chromium (tests/ui).
#include "tests/integration/integration_fixture.h"

namespace storeplane::testing {
namespace {

constexpr const char* kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

using WebUi = ServerTest;

void ExpectUiHeaders(const client::HttpResponse& resp) {
  EXPECT_EQ(resp.Header("content-security-policy"), kCsp);
  EXPECT_EQ(resp.Header("x-content-type-options"), "nosniff");
  EXPECT_EQ(resp.Header("referrer-policy"), "no-referrer");
  EXPECT_EQ(resp.Header("cache-control"), "no-cache");
}

TEST_F(WebUi, ServesTheIndexWithoutATokenUnderAStrictPolicy) {
  auto resp = Call("GET", "/ui/", "", {}, /*with_token=*/false);
  ASSERT_EQ(resp.status, 200) << resp.body;
  EXPECT_EQ(resp.Header("content-type"), "text/html; charset=utf-8");
  ExpectUiHeaders(resp);
  EXPECT_FALSE(resp.Header("etag").empty());
  EXPECT_NE(resp.body.find(R"(<script type="module" src="app.js"></script>)"), std::string::npos);
  // Nothing inline: the policy would refuse it.
  EXPECT_EQ(resp.body.find("<script>"), std::string::npos);
  EXPECT_EQ(resp.body.find("style="), std::string::npos);
  EXPECT_EQ(resp.body.find("<style"), std::string::npos);
}

TEST_F(WebUi, ServesModulesAndStylesWithTheirTypes) {
  auto js = Call("GET", "/ui/lib/api.js", "", {}, false);
  ASSERT_EQ(js.status, 200);
  EXPECT_EQ(js.Header("content-type"), "text/javascript; charset=utf-8");
  ExpectUiHeaders(js);
  auto css = Call("GET", "/ui/style.css", "", {}, false);
  ASSERT_EQ(css.status, 200);
  EXPECT_EQ(css.Header("content-type"), "text/css; charset=utf-8");
  auto svg = Call("GET", "/ui/favicon.svg", "", {}, false);
  ASSERT_EQ(svg.status, 200);
  EXPECT_EQ(svg.Header("content-type"), "image/svg+xml");
}

TEST_F(WebUi, AnswersNotModifiedToItsOwnETag) {
  auto first = Call("GET", "/ui/app.js", "", {}, false);
  ASSERT_EQ(first.status, 200);
  const auto etag = first.Header("etag");
  ASSERT_EQ(etag.front(), '"');
  auto again = Call("GET", "/ui/app.js", "", {{"If-None-Match", etag}}, false);
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(again.Header("etag"), etag);
  ExpectUiHeaders(again);
  auto other = Call("GET", "/ui/app.js", "", {{"If-None-Match", "\"0000\""}}, false);
  EXPECT_EQ(other.status, 200);
}

TEST_F(WebUi, WhatIsNotEmbeddedIsNotFound) {
  for (const char* path : {"/ui/nope.js", "/ui/lib/", "/ui/%2e%2e/CMakeLists.txt", "/ui/index.html/"}) {
    auto resp = Call("GET", path, "", {}, false);
    EXPECT_EQ(resp.status, 404) << path;
    ExpectUiHeaders(resp);
  }
  // The client resolves dot segments itself; nothing of the source tree is reachable.
  EXPECT_EQ(Call("GET", "/ui/../config/policy.yaml", "", {}, false).status, 404);
  EXPECT_EQ(Call("POST", "/ui/app.js", "{}", {}, false).status, 405);
}

TEST_F(WebUi, RootAndUiRedirectToTheIndex) {
  auto ui = Call("GET", "/ui", "", {}, false);
  EXPECT_EQ(ui.status, 301);
  EXPECT_EQ(ui.Header("location"), "/ui/");
  auto root = Call("GET", "/", "", {}, false);
  EXPECT_EQ(root.status, 302);
  EXPECT_EQ(root.Header("location"), "/ui/");
}

TEST_F(WebUi, TheApiStillNeedsItsToken) {
  auto resp = Call("GET", "/v1/stores", "", {}, false);
  EXPECT_EQ(resp.status, 401);
}

}  // namespace
}  // namespace storeplane::testing
