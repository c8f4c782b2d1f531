#include "tests/support/tcp_balancer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace storeplane::testing {

namespace {

int ConnectTo(const std::string& host_port) {
  const auto colon = host_port.rfind(':');
  if (colon == std::string::npos) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(host_port.substr(colon + 1))));
  if (::inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &addr.sin_addr) != 1) return -1;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Copies what is readable on `from` to `to`; false at EOF or on an error.
bool Forward(int from, int to) {
  char buffer[16384];
  const ssize_t n = ::read(from, buffer, sizeof(buffer));
  if (n <= 0) return false;
  for (ssize_t off = 0; off < n;) {
    const ssize_t w = ::write(to, buffer + off, static_cast<std::size_t>(n - off));
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      return false;
    }
    off += w;
  }
  return true;
}

}  // namespace

TcpBalancer::TcpBalancer(std::vector<std::string> backends)
    : backends_(std::move(backends)), counts_(backends_.size(), 0) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return;
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(listen_fd_, 256) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    return;
  }
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { Accept(); });
}

TcpBalancer::~TcpBalancer() {
  stopping_ = true;
  if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> pipes;
  {
    std::lock_guard lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    pipes.swap(pipes_);
  }
  for (auto& t : pipes) t.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

std::vector<std::uint64_t> TcpBalancer::connections() const {
  std::lock_guard lock(mu_);
  return counts_;
}

int TcpBalancer::ConnectNext(std::size_t* chosen) {
  for (std::size_t tries = 0; tries < backends_.size(); ++tries) {
    std::size_t index = 0;
    {
      std::lock_guard lock(mu_);
      index = next_++ % backends_.size();
    }
    const int fd = ConnectTo(backends_[index]);
    if (fd >= 0) {
      *chosen = index;
      return fd;
    }
  }
  return -1;
}

void TcpBalancer::Accept() {
  while (!stopping_) {
    pollfd pfd{listen_fd_, POLLIN, 0};
    if (::poll(&pfd, 1, 200) <= 0) continue;
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    std::lock_guard lock(mu_);
    if (stopping_) {
      ::close(client);
      return;
    }
    open_fds_.push_back(client);
    pipes_.emplace_back([this, client] { Pipe(client); });
  }
}

void TcpBalancer::Pipe(int client) {
  std::size_t chosen = 0;
  const int backend = ConnectNext(&chosen);
  if (backend >= 0) {
    {
      std::lock_guard lock(mu_);
      ++counts_[chosen];
      open_fds_.push_back(backend);
    }
    pollfd fds[2] = {{client, POLLIN, 0}, {backend, POLLIN, 0}};
    while (!stopping_) {
      const int ready = ::poll(fds, 2, 200);
      if (ready < 0 && errno != EINTR) break;
      if (ready <= 0) continue;
      if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) && !Forward(client, backend)) break;
      if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) && !Forward(backend, client)) break;
    }
  }
  std::lock_guard lock(mu_);
  for (int fd : {client, backend}) {
    if (fd < 0) continue;
    open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd), open_fds_.end());
    ::close(fd);
  }
}

}  // namespace storeplane::testing
