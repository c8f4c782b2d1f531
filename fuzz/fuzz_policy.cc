// The policy file (server::ParsePolicyText, src/server/policy_loader.h). Input: the YAML.
// Properties: an accepted policy passes core::ValidatePolicy, and Decide() answers for each
// of its principals on every catalog action without crashing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/authority.h"
#include "server/policy_loader.h"

using namespace storeplane;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto policy = server::ParsePolicyText(text, "fuzz.yaml");
  if (!policy.ok()) return 0;
  if (!core::ValidatePolicy(*policy, core::EnvironmentSet{}).ok()) __builtin_trap();
  const core::AuthzTarget target{"shop-1", "production", {{"region", "eu"}, {"tier", "gold"}}};
  const std::optional<core::AuthzTarget> scoped(target);
  int budget = 64;
  for (const auto& [id, principal] : policy->principals) {
    for (const auto& action : core::ActionCatalog()) {
      if (--budget < 0) return 0;
      (void)core::Decide(*policy, id, action.name, scoped);
      (void)core::Decide(*policy, id, action.name, std::nullopt);
    }
  }
  return 0;
}
