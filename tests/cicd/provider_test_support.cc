#include "provider_test_support.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/json/parse.hpp>
#include <fstream>
#include <stdexcept>

namespace storeplane::cicd::testing {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "cicd-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Write(const std::string& name, const std::string& content) const {
  const std::string path = (path_ / name).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  return path;
}

TriggerRequest SampleRequest(const std::string& provider_name) {
  TriggerRequest request;
  request.correlation_id = kCorrelationId;
  request.store_id = "store-1";
  request.environment = "production";
  request.isolation_mode = "dedicated";
  request.kind = "deploy";
  request.release = "2026.12.04-1";
  request.callback_url = "https://plane.example/hooks/cicd/" + provider_name;
  return request;
}

std::unique_ptr<Provider> MustMake(const ProviderConfig& config) {
  auto made = MakeProvider(config);
  if (!made.ok()) {
    ADD_FAILURE() << "MakeProvider: " << made.error().message;
    return nullptr;
  }
  return std::move(made).value();
}

boost::json::value Json(const std::string& text) {
  boost::system::error_code ec;
  auto value = boost::json::parse(text, ec);
  if (ec) {
    ADD_FAILURE() << "not JSON: " << text;
    return nullptr;
  }
  return value;
}

}  // namespace storeplane::cicd::testing
