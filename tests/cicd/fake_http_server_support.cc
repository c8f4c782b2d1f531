#include "fake_http_server_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>

namespace storeplane::cicd::testing {
namespace {

constexpr int kIoWaitMs = 5000;
constexpr std::size_t kMaxRequestBytes = 1 << 20;

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) text.remove_suffix(1);
  return std::string(text);
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

// Waits until `fd` is readable; false when stopping or after kIoWaitMs.
bool WaitReadable(int fd, int wake_fd) {
  pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
  while (true) {
    const int n = ::poll(fds, 2, kIoWaitMs);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    if ((fds[1].revents & POLLIN) != 0) return false;
    return (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
  }
}

void WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

std::string RecordedRequest::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

Reply Reply::Json(int status, std::string body) {
  Reply reply;
  reply.status = status;
  reply.body = std::move(body);
  reply.headers.emplace_back("Content-Type", "application/json");
  return reply;
}

Reply Reply::Empty(int status) {
  Reply reply;
  reply.status = status;
  return reply;
}

Reply Reply::Hang() {
  Reply reply;
  reply.hang = true;
  return reply;
}

FakeHttpServer::FakeHttpServer() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("socket failed");
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(listen_fd_, 16) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("bind/listen failed");
  }
  socklen_t length = sizeof(address);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
  if (::pipe2(wake_, O_CLOEXEC) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("pipe failed");
  }
  thread_ = std::thread([this] { Serve(); });
}

FakeHttpServer::~FakeHttpServer() {
  stopping_ = true;
  const char byte = 'x';
  (void)::write(wake_[1], &byte, 1);
  if (thread_.joinable()) thread_.join();
  for (const int fd : held_) ::close(fd);
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void FakeHttpServer::On(const std::string& method, const std::string& target, Reply reply) {
  std::lock_guard lock(mutex_);
  routes_[{method, target}].push_back(std::move(reply));
}

void FakeHttpServer::Fallback(std::function<Reply(const RecordedRequest&)> handler) {
  std::lock_guard lock(mutex_);
  fallback_ = std::move(handler);
}

std::string FakeHttpServer::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::vector<RecordedRequest> FakeHttpServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::vector<RecordedRequest> FakeHttpServer::RequestsTo(const std::string& path) const {
  std::vector<RecordedRequest> out;
  for (auto& request : requests()) {
    if (request.path == path) out.push_back(std::move(request));
  }
  return out;
}

void FakeHttpServer::Serve() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    const int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (fds[1].revents & POLLIN) != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    HandleConnection(fd);
  }
}

void FakeHttpServer::HandleConnection(int fd) {
  std::string data;
  std::size_t header_end = std::string::npos;
  char buffer[4096];
  while (header_end == std::string::npos) {
    if (data.size() > kMaxRequestBytes || !WaitReadable(fd, wake_[0])) {
      ::close(fd);
      return;
    }
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      ::close(fd);
      return;
    }
    data.append(buffer, static_cast<std::size_t>(n));
    header_end = data.find("\r\n\r\n");
  }

  RecordedRequest request;
  std::string_view head(data.data(), header_end);
  const auto line_end = head.find("\r\n");
  const std::string_view request_line = head.substr(0, line_end);
  const auto first_space = request_line.find(' ');
  const auto second_space = request_line.find(' ', first_space + 1);
  request.method = std::string(request_line.substr(0, first_space));
  request.target = std::string(request_line.substr(first_space + 1, second_space - first_space - 1));
  const auto question = request.target.find('?');
  request.path = request.target.substr(0, question);
  request.query = question == std::string::npos ? std::string() : request.target.substr(question + 1);
  std::string_view rest = line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
  while (!rest.empty()) {
    const auto end = rest.find("\r\n");
    const std::string_view line = rest.substr(0, end);
    const auto colon = line.find(':');
    if (colon != std::string_view::npos) {
      request.headers[Lower(std::string(line.substr(0, colon)))] = Trim(line.substr(colon + 1));
    }
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 2);
  }
  const std::size_t length =
      request.HasHeader("content-length") ? std::strtoul(request.Header("content-length").c_str(), nullptr, 10) : 0;
  request.body = data.substr(header_end + 4);
  while (request.body.size() < length) {
    if (!WaitReadable(fd, wake_[0])) {
      ::close(fd);
      return;
    }
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      ::close(fd);
      return;
    }
    request.body.append(buffer, static_cast<std::size_t>(n));
  }

  const Reply reply = Answer(request);
  {
    std::lock_guard lock(mutex_);
    requests_.push_back(request);
  }
  if (reply.hang) {
    held_.push_back(fd);
    return;
  }
  std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " " + ReasonPhrase(reply.status) + "\r\n";
  for (const auto& [name, value] : reply.headers) out += name + ": " + value + "\r\n";
  out += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  out += reply.body;
  WriteAll(fd, out);
  ::shutdown(fd, SHUT_WR);
  ::close(fd);
}

Reply FakeHttpServer::Answer(const RecordedRequest& request) {
  std::lock_guard lock(mutex_);
  auto it = routes_.find({request.method, request.target});
  if (it != routes_.end() && !it->second.empty()) {
    Reply reply = it->second.front();
    if (it->second.size() > 1) it->second.pop_front();
    return reply;
  }
  if (fallback_) return fallback_(request);
  return Reply::Json(599, R"({"message":"no script for this request"})");
}

int UnusedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    throw std::runtime_error("no free loopback port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

std::string UrlDecode(std::string_view text, bool form) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+' && form) {
      out += ' ';
    } else if (c == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) != 0 &&
               std::isxdigit(static_cast<unsigned char>(text[i + 2])) != 0) {
      out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> ParseForm(std::string_view body) {
  std::vector<std::pair<std::string, std::string>> fields;
  while (!body.empty()) {
    const auto amp = body.find('&');
    const std::string_view pair = body.substr(0, amp);
    const auto equals = pair.find('=');
    fields.emplace_back(UrlDecode(pair.substr(0, equals), true),
                        equals == std::string_view::npos ? std::string() : UrlDecode(pair.substr(equals + 1), true));
    if (amp == std::string_view::npos) break;
    body.remove_prefix(amp + 1);
  }
  return fields;
}

}  // namespace storeplane::cicd::testing
