#include "server/provider_pacing.h"

#include <algorithm>
#include <cmath>

namespace storeplane::server {

ProviderPacer::ProviderPacer(const std::map<std::string, int>& per_minute) {
  for (const auto& [name, rate] : per_minute) {
    if (rate < 1) continue;
    Bucket bucket;
    bucket.per_ms = rate / 60'000.0;
    bucket.capacity = rate;
    bucket.tokens = rate;
    buckets_.emplace(name, bucket);
  }
}

void ProviderPacer::RefillLocked(Bucket& bucket, std::int64_t now_ms) {
  if (bucket.last_ms >= 0 && now_ms > bucket.last_ms) {
    bucket.tokens =
        std::min(bucket.capacity, bucket.tokens + static_cast<double>(now_ms - bucket.last_ms) * bucket.per_ms);
  }
  if (bucket.last_ms < 0 || now_ms > bucket.last_ms) bucket.last_ms = now_ms;
}

int ProviderPacer::Available(const std::string& provider, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  auto it = buckets_.find(provider);
  if (it == buckets_.end()) return kUnlimited;
  RefillLocked(it->second, now_ms);
  return static_cast<int>(std::floor(it->second.tokens + 1e-9));
}

bool ProviderPacer::TryTake(const std::string& provider, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  auto it = buckets_.find(provider);
  if (it == buckets_.end()) return true;
  RefillLocked(it->second, now_ms);
  if (it->second.tokens + 1e-9 < 1.0) return false;
  it->second.tokens -= 1.0;
  return true;
}

std::int64_t ProviderPacer::WaitMs(const std::string& provider, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  auto it = buckets_.find(provider);
  if (it == buckets_.end()) return 0;
  RefillLocked(it->second, now_ms);
  const double missing = 1.0 - it->second.tokens;
  if (missing <= 1e-9) return 0;
  return static_cast<std::int64_t>(std::ceil(missing / it->second.per_ms));
}

}  // namespace storeplane::server
