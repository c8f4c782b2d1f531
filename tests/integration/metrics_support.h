// Helpers for the metrics tests: find a sample in the Prometheus text format by metric name
// and a subset of its labels, and the policy the tests run with (a scraper holding
// metrics.read, an auditor without it).
#pragma once

#include <map>
#include <optional>
#include <sstream>
#include <string>

namespace storeplane::testing {

// The value of the first sample of `name` whose labels include every pair of `labels`
// (exact name: "x" does not match "x_total"); nullopt when there is none.
inline std::optional<double> SampleValue(const std::string& text, const std::string& name,
                                         const std::map<std::string, std::string>& labels = {}) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto name_end = line.find_first_of("{ ");
    if (name_end == std::string::npos || line.compare(0, name_end, name) != 0 || name_end != name.size()) continue;
    std::string label_text;
    std::size_t value_at = name_end;
    if (line[name_end] == '{') {
      const auto close = line.rfind('}');  // label values may hold braces: "/v1/stores/{id}"
      if (close == std::string::npos) continue;
      label_text = line.substr(name_end + 1, close - name_end - 1);
      value_at = close + 1;
    }
    bool all = true;
    for (const auto& [key, value] : labels) {
      if (label_text.find(key + "=\"" + value + "\"") == std::string::npos) all = false;
    }
    if (!all) continue;
    return std::stod(line.substr(value_at));
  }
  return std::nullopt;
}

// The sum of every sample of `name` (0 when there is none).
inline double SampleSum(const std::string& text, const std::string& name) {
  std::istringstream lines(text);
  std::string line;
  double sum = 0;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto name_end = line.find_first_of("{ ");
    if (name_end != name.size() || line.compare(0, name_end, name) != 0) continue;
    const auto close = line[name_end] == '{' ? line.rfind('}') + 1 : name_end;
    sum += std::stod(line.substr(close));
  }
  return sum;
}

// The bootstrap admin registers and reads; "scraper" holds metrics.read only (as a
// Prometheus service account would, through a role like viewer); "auditor" reads the audit
// trail and not the metrics.
inline std::string MetricsPolicy() {
  return R"(version: 1
roles:
  operator:
    allow:
      - actions: [store.read, store.register, store.label, principal.whoami, agent.read, agent.enroll, metrics.read]
  scraper:
    allow:
      - actions: [metrics.read]
  auditor:
    allow:
      - actions: [audit.read, principal.whoami]
  tokens:
    allow:
      - actions: [token.*]
principals:
  admin:
    kind: operator
    roles: [operator, tokens]
  prometheus:
    kind: service
    roles: [scraper]
  auditor-1:
    kind: operator
    roles: [auditor]
)";
}

}  // namespace storeplane::testing
