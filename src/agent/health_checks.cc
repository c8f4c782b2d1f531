#include "agent/health_checks.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <ctime>
#include <memory>
#include <mutex>

#include "agent/magento_output.h"

namespace storeplane::agent {
namespace {

using core::CheckName;
using core::CheckResult;
using core::CheckStatus;

void CurlInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t DiscardBody(char* /*data*/, size_t size, size_t count, void* /*user*/) { return size * count; }

int AbortOnStop(void* user, curl_off_t /*dltotal*/, curl_off_t /*dlnow*/, curl_off_t /*ultotal*/,
                curl_off_t /*ulnow*/) {
  const auto* stop = static_cast<const StopSignal*>(user);
  return stop != nullptr && stop->requested() ? 1 : 0;
}

}  // namespace

std::vector<CheckResult> RunHealthChecks(const AgentConfig& config, const StopSignal* stop) {
  const auto& checks = config.checks;
  return {
      CheckStorefront(checks.storefront_url, checks.storefront_timeout_ms, stop),
      CheckMaintenance(config.MaintenanceFlagPath()),
      CheckCron(config.CronMarkerPath(), checks.cron_max_age_s),
      CheckDisk(config.magento_root, checks.disk_warn_percent, checks.disk_fail_percent),
      CheckRelease(config.ReleaseMarkerPath()),
      CheckIsolation(config.isolation_mode),
  };
}

CheckResult StorefrontVerdict(std::optional<long> http_status) {
  if (!http_status || *http_status < 100 || *http_status > 599) {
    return {CheckName::kStorefront, CheckStatus::kFail, "unreachable"};
  }
  const long code = *http_status;
  if (code >= 200 && code < 300) return {CheckName::kStorefront, CheckStatus::kPass, "http_2xx"};
  const auto status = code >= 500 ? CheckStatus::kFail : CheckStatus::kWarn;
  return {CheckName::kStorefront, status, "http_" + std::to_string(code)};
}

CheckResult CheckStorefront(const std::string& url, int timeout_ms, const StopSignal* stop) {
  if (url.empty()) return {CheckName::kStorefront, CheckStatus::kPass, "disabled"};
  CurlInitOnce();
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return StorefrontVerdict(std::nullopt);
  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &DiscardBody);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "shop-agent/0.1 (storefront check)");
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &AbortOnStop);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, const_cast<StopSignal*>(stop));
  if (curl_easy_perform(h) != CURLE_OK) return StorefrontVerdict(std::nullopt);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  return StorefrontVerdict(status);
}

CheckResult CheckMaintenance(const std::string& maintenance_flag_path) {
  struct stat st = {};
  if (::stat(maintenance_flag_path.c_str(), &st) == 0) {
    return {CheckName::kMaintenance, CheckStatus::kWarn, "maintenance_on"};
  }
  return {CheckName::kMaintenance, CheckStatus::kPass, "maintenance_off"};
}

CheckResult CronVerdict(std::optional<std::chrono::seconds> marker_age, int max_age_s) {
  if (!marker_age) return {CheckName::kCron, CheckStatus::kWarn, "cron_missing"};
  if (marker_age->count() <= max_age_s) return {CheckName::kCron, CheckStatus::kPass, "cron_fresh"};
  return {CheckName::kCron, CheckStatus::kWarn, "cron_stale"};
}

CheckResult CheckCron(const std::string& marker_path, int max_age_s) {
  struct stat st = {};
  if (::stat(marker_path.c_str(), &st) != 0) return CronVerdict(std::nullopt, max_age_s);
  const std::time_t now = std::time(nullptr);
  return CronVerdict(std::chrono::seconds(now - st.st_mtime), max_age_s);
}

CheckResult DiskVerdict(double free_percent, int warn_percent, int fail_percent) {
  if (free_percent < fail_percent) return {CheckName::kDisk, CheckStatus::kFail, "disk_critical"};
  if (free_percent < warn_percent) return {CheckName::kDisk, CheckStatus::kWarn, "disk_low"};
  return {CheckName::kDisk, CheckStatus::kPass, "disk_ok"};
}

CheckResult CheckDisk(const std::string& path, int warn_percent, int fail_percent) {
  struct statvfs fs = {};
  if (::statvfs(path.c_str(), &fs) != 0 || fs.f_blocks == 0) {
    return {CheckName::kDisk, CheckStatus::kFail, "disk_critical"};
  }
  const double free_percent = 100.0 * static_cast<double>(fs.f_bavail) / static_cast<double>(fs.f_blocks);
  return DiskVerdict(free_percent, warn_percent, fail_percent);
}

CheckResult CheckRelease(const std::string& marker_path) {
  if (ReadReleaseMarker(marker_path)) return {CheckName::kRelease, CheckStatus::kPass, "release_present"};
  return {CheckName::kRelease, CheckStatus::kWarn, "release_missing"};
}

CheckResult CheckIsolation(std::optional<core::IsolationMode> mode) {
  if (mode) return {CheckName::kIsolation, CheckStatus::kPass, "isolation_reported"};
  return {CheckName::kIsolation, CheckStatus::kWarn, "isolation_unknown"};
}

std::optional<std::string> ReadReleaseMarker(const std::string& marker_path) {
  constexpr std::size_t kMaxMarkerBytes = 256;
  const int fd = ::open(marker_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return std::nullopt;
  struct stat st = {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return std::nullopt;
  }
  std::array<char, kMaxMarkerBytes + 1> buffer{};
  std::size_t used = 0;
  while (used < buffer.size()) {
    const ssize_t n = ::read(fd, buffer.data() + used, buffer.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    used += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (used > kMaxMarkerBytes) return std::nullopt;
  return ParseReleaseMarker(std::string_view(buffer.data(), used));
}

}  // namespace storeplane::agent
