// A small HTTP/1.1 server on 127.0.0.1 (port 0) for the CI/CD adapter tests: it records each
// request (method, target, headers, body) and answers from the test's script, one connection
// at a time on its own thread, with "Connection: close" on every answer. A scripted reply may
// also never come, for timeout tests. Plain POSIX sockets; no HTTP library.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace storeplane::cicd::testing {

struct RecordedRequest {
  std::string method;
  std::string target;                          // as sent: path and query
  std::string path;                            // the target before '?'
  std::string query;                           // the target after '?', still encoded
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  std::string Header(const std::string& lower_name) const;
  bool HasHeader(const std::string& lower_name) const { return headers.count(lower_name) != 0; }
};

struct Reply {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Length and Connection
  bool hang = false;                                         // read the request, never answer

  static Reply Json(int status, std::string body);
  static Reply Empty(int status);
  static Reply Hang();
};

class FakeHttpServer {
 public:
  FakeHttpServer();
  ~FakeHttpServer();
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  // Scripts the answer to `method` `target` (the exact path and query). Several replies for
  // one route are given in order; the last one repeats. An unscripted request gets a 599.
  void On(const std::string& method, const std::string& target, Reply reply);
  // Answers every request that no route matches.
  void Fallback(std::function<Reply(const RecordedRequest&)> handler);

  std::string url() const;  // "http://127.0.0.1:<port>"
  int port() const { return port_; }
  std::vector<RecordedRequest> requests() const;
  // The requests to `path` (any query), in order.
  std::vector<RecordedRequest> RequestsTo(const std::string& path) const;

 private:
  void Serve();
  void HandleConnection(int fd);
  Reply Answer(const RecordedRequest& request);

  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, std::deque<Reply>> routes_;
  std::function<Reply(const RecordedRequest&)> fallback_;
  std::vector<RecordedRequest> requests_;
  std::vector<int> held_;  // connections left unanswered, closed at the end
  std::thread thread_;
};

// A port on 127.0.0.1 that nothing listens on (bound once, then closed).
int UnusedPort();

// Percent-decoding, with '+' as a space when `form` is set.
std::string UrlDecode(std::string_view text, bool form);
// An application/x-www-form-urlencoded body (or a query string) as its fields, in order.
std::vector<std::pair<std::string, std::string>> ParseForm(std::string_view body);

}  // namespace storeplane::cicd::testing
