#include "server/leadership.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <filesystem>

#include "core/audit.h"
#include "server/logging.h"

namespace storeplane::server {

namespace {
constexpr std::string_view kFenceRefusal = "this replica no longer holds the leader lease";
}  // namespace

bool IsFenceRefusal(const Error& error) {
  return error.code == ErrorCode::kPreconditionFailed && error.message.starts_with(kFenceRefusal);
}

Leadership::Leadership(db::Repository& repo, Options options, std::function<std::int64_t()> monotonic_ms)
    : Leadership(Lease{[&repo](std::string_view holder, std::int64_t lease_ms) {
                         return repo.AcquireLeadership(holder, lease_ms);
                       },
                       [&repo](std::string_view holder) { return repo.ReleaseLeadership(holder); }},
                 std::move(options), std::move(monotonic_ms)) {}

Leadership::Leadership(Lease lease, Options options, std::function<std::int64_t()> monotonic_ms)
    : lease_(std::move(lease)), options_(std::move(options)), now_ms_(std::move(monotonic_ms)) {}

Leadership::~Leadership() { Stop(); }

int Leadership::AddListener(std::function<void(bool)> listener) {
  std::lock_guard lock(listeners_mu_);
  const int id = next_listener_id_++;
  listeners_.emplace_back(id, std::move(listener));
  return id;
}

void Leadership::RemoveListener(int id) {
  std::lock_guard lock(listeners_mu_);
  std::erase_if(listeners_, [id](const auto& entry) { return entry.first == id; });
}

void Leadership::Start() {
  RenewOnce();
  thread_ = std::thread([this] { Main(); });
}

void Leadership::Stop() {
  {
    std::lock_guard lock(stop_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  bool was_leader = false;
  {
    std::lock_guard lock(mu_);
    was_leader = token_.has_value();
    token_.reset();
  }
  if (was_leader) {
    if (auto s = lease_.release(options_.holder); !s.ok()) {
      log::Warn("cannot give up the leader lease; it expires by itself", {{"detail", s.error().message}});
    }
    Notify(false);
  }
}

std::optional<db::Fence> Leadership::fence() const {
  std::lock_guard lock(mu_);
  if (!token_ || now_ms_() >= deadline_ms_) return std::nullopt;
  return db::Fence{options_.holder, *token_};
}

void Leadership::LostLeadership() {
  bool was = false;
  {
    std::lock_guard lock(mu_);
    was = token_.has_value();
    token_.reset();
    deadline_ms_ = 0;
  }
  if (was) {
    log::Warn("leadership lost: a fenced write was refused", {{"holder", options_.holder}});
    Notify(false);
  }
}

void Leadership::RenewOnce() {
  const std::int64_t sent = now_ms_();
  auto granted = lease_.acquire(options_.holder, options_.lease_ms);
  bool gained = false;  // a new term: a token this replica did not lead with before
  bool lost = false;    // a term ended (before a new one, when both)
  {
    std::lock_guard lock(mu_);
    const bool had = token_.has_value();
    if (granted.ok() && granted->has_value()) {
      if (!had || *token_ != **granted) {
        gained = true;
        lost = had;  // another replica may have led in between: start afresh
      }
      token_ = **granted;
      deadline_ms_ = sent + options_.lease_ms - options_.margin_ms;
    } else if (granted.ok()) {
      lost = had;  // another replica holds a running lease
      token_.reset();
      deadline_ms_ = 0;
    }
    // The database could not be asked: the local deadline runs out by itself, and fence()
    // says so; the term ends at the next answer.
  }
  if (!granted.ok()) log::Warn("cannot renew the leader lease", {{"detail", granted.error().message}});
  if (lost) {
    log::Info("leadership lost", {{"holder", options_.holder}});
    Notify(false);
  }
  if (gained) {
    ++terms_;
    log::Info("leadership gained", {{"holder", options_.holder}, {"token", **granted}});
    Notify(true);
  }
}

void Leadership::Main() {
  for (;;) {
    {
      std::unique_lock lock(stop_mu_);
      if (stop_cv_.wait_for(lock, std::chrono::milliseconds(options_.renew_ms), [&] { return stopping_; })) return;
    }
    RenewOnce();
  }
}

void Leadership::Notify(bool leader) {
  std::lock_guard lock(listeners_mu_);
  const auto listeners = listeners_;  // a listener may report a lost lease, which notifies again
  for (const auto& [id, listener] : listeners) listener(leader);
}

std::string DefaultReplicaName(const std::string& data_dir) {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  std::error_code ec;
  const auto absolute = std::filesystem::absolute(data_dir, ec).lexically_normal().string();
  return std::string(host.data()) + "-" + core::Sha256Hex(ec ? data_dir : absolute).substr(0, 8);
}

}  // namespace storeplane::server
