// Transport-neutral request and response values passed between the Beast session
// (http_server.cc) and the request pipeline (app.cc). Handlers never see Beast types.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace storeplane::server {

struct Request {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // decoded path, without the query
  std::string query;                           // raw query string, without '?'
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string remote;  // peer address, for logs

  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
  bool HasHeader(const std::string& lower_name) const { return headers.contains(lower_name); }
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool close = false;  // close the connection after writing

  void SetHeader(std::string name, std::string value) { headers.emplace_back(std::move(name), std::move(value)); }
};

}  // namespace storeplane::server
