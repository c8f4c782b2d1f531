// Shared fixture for the integration tests: a running storeplaned with a fresh data
// directory, an admin token, and intent-named helpers for calling its API.
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <memory>
#include <string>
#include <vector>

#include "client/http_client.h"
#include "tests/support/server_process.h"

namespace storeplane::testing {

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Starts (or restarts) the server on the same data directory, with the policy in
  // policy_file_ (PermissivePolicy() unless a test wrote another).
  void StartServer(std::vector<std::string> extra_args = {});
  // The default roles with the bootstrap admin as operator and security-admin and no
  // approval rules, so that tests of the registry are not about approvals.
  static std::string PermissivePolicy();
  void WritePolicy(const std::string& yaml);
  // Creates a token for `principal` with the admin token; returns the token text.
  std::string CreateToken(const std::string& principal);
  client::HttpResponse CallAs(const std::string& token, const std::string& method, const std::string& path,
                              const std::string& body = "",
                              std::vector<std::pair<std::string, std::string>> headers = {});

  client::HttpResponse Call(const std::string& method, const std::string& path, const std::string& body = "",
                            std::vector<std::pair<std::string, std::string>> headers = {}, bool with_token = true);
  client::HttpResponse Register(const std::string& id, const std::string& environment = "staging",
                                const std::string& isolation = "shared", const std::string& labels_json = "{}");
  client::HttpResponse Patch(const std::string& id, const std::string& body, const std::string& if_match);
  // The whole registry as GET /v1/stores pages concatenated, for before/after comparisons.
  std::string Snapshot();

  static boost::json::object Json(const client::HttpResponse& resp);
  // Asserts a problem+json response with `status` and the problem type's kind.
  static void ExpectProblem(const client::HttpResponse& resp, long status, const std::string& kind);

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<ServerProcess> server_;
  std::string token_;
  std::string token_file_;
  std::string policy_file_;
  std::vector<std::string> server_env_;  // extra NAME=value for the server process
  client::HttpClient http_;
};

}  // namespace storeplane::testing
