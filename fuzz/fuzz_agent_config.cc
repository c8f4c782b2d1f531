// The shop agent's configuration file (agent::LoadAgentConfig, src/agent/agent_config.h).
// Input: the YAML file. Property: an accepted configuration answers EffectiveTimeoutS and
// Allows for every operation, and its timeouts are positive.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/agent_config.h"
#include "core/operation.h"
#include "fuzz_support.h"

using namespace storeplane;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::ScratchFile file("agent-config");
  const auto& path = file.Write(std::string_view(reinterpret_cast<const char*>(data), size));
  auto config = agent::LoadAgentConfig(path);
  if (!config.ok()) return 0;
  for (const auto name : core::AllOperationNames()) {
    (void)config->Allows(name);
    for (const int requested : {0, -1, 1, 60, 1 << 30}) {
      if (config->EffectiveTimeoutS(name, requested) <= 0) __builtin_trap();
    }
  }
  (void)config->JournalPath();
  (void)config->CronMarkerPath();
  return 0;
}
