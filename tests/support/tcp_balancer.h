// Test support: a TCP load balancer on a loopback port, in front of several storeplaned
// replicas, as operators run them (ADR 0012). Each accepted connection goes to the next
// backend in turn that accepts a connection (a dead replica is skipped), and bytes are
// copied both ways until either side closes. Killing a backend breaks only the connections
// that went to it; clients reconnect through the balancer to the others.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace storeplane::testing {

class TcpBalancer {
 public:
  // `backends`: "host:port" of each replica. Listens at once; url() is its address.
  explicit TcpBalancer(std::vector<std::string> backends);
  ~TcpBalancer();  // closes the listener and every connection, joins the threads
  TcpBalancer(const TcpBalancer&) = delete;
  TcpBalancer& operator=(const TcpBalancer&) = delete;

  bool ok() const { return listen_fd_ >= 0; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Connections handed to each backend so far (by index).
  std::vector<std::uint64_t> connections() const;

 private:
  void Accept();
  void Pipe(int client_fd);
  int ConnectNext(std::size_t* chosen);

  std::vector<std::string> backends_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::size_t next_ = 0;               // guarded by mu_
  std::vector<std::uint64_t> counts_;  // guarded by mu_
  std::vector<int> open_fds_;          // guarded by mu_: shut down at destruction
  std::vector<std::thread> pipes_;     // guarded by mu_
  std::thread acceptor_;
};

}  // namespace storeplane::testing
