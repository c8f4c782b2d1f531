// Label selectors and label validation (src/core/label_selector.h, labels.h).
// Input: first byte picks the mode; the rest is selector text, or "key\nvalue" lines.
// Properties: a parsed selector's canonical form parses again to the same canonical form;
// Matches() never crashes on labels taken from the same input.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/label_selector.h"
#include "core/labels.h"
#include "fuzz_support.h"

using namespace storeplane;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Reader in(data, size);
  const auto mode = in.Byte() % 2;
  if (mode == 0) {
    const auto text = in.Line();
    auto selector = core::LabelSelector::Parse(text);
    if (!selector.ok()) return 0;
    const auto canonical = selector->ToString();
    auto again = core::LabelSelector::Parse(canonical);
    if (!again.ok()) __builtin_trap();  // the canonical form must parse
    if (again->ToString() != canonical) __builtin_trap();
    if (again->requirements().size() != selector->requirements().size()) __builtin_trap();
    // Labels from the remaining lines: "key=value".
    core::Labels labels;
    while (!in.empty() && labels.size() < 70) {
      const auto line = in.Line();
      const auto eq = line.find('=');
      labels[std::string(line.substr(0, eq))] = eq == std::string_view::npos ? "" : std::string(line.substr(eq + 1));
    }
    const bool a = selector->Matches(labels);
    const bool b = again->Matches(labels);
    if (a != b) __builtin_trap();  // the canonical form selects the same stores
    return 0;
  }
  // Label validation: pairs of lines.
  core::Labels labels;
  while (!in.empty() && labels.size() < 80) {
    const auto key = in.Line();
    const auto value = in.Line();
    (void)core::ValidateLabelKey(key);
    (void)core::ValidateLabelValue(value);
    (void)core::CheckNotSecretLike(key, value);
    (void)core::ShannonEntropy(value);
    labels[std::string(key)] = std::string(value);
  }
  (void)core::ValidateLabels(labels);
  return 0;
}
