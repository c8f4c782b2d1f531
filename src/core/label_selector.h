// Label selectors (Kubernetes syntax): "env=prod,tier!=edge,region in (eu,us),!legacy,canary".
// Parsed once into requirements; Matches() is a pure function of a label set.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/store.h"

namespace storeplane::core {

struct LabelRequirement {
  enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kDoesNotExist };
  std::string key;
  Op op = Op::kExists;
  std::vector<std::string> values;  // one for = and !=, one or more for in/notin
};

class LabelSelector {
 public:
  LabelSelector() = default;  // matches everything
  // "=" and "==" are the same; "a" is existence, "!a" absence; requirements are ANDed.
  // "!=" and "notin" match a store without the key, as in Kubernetes. Empty or blank text
  // matches everything. Errors are kInvalidArgument, field "selector", naming the offset.
  // requirements() come back canonical: sorted by (key, op, values), values sorted, no
  // duplicates.
  static Result<LabelSelector> Parse(std::string_view text);

  bool Matches(const Labels& labels) const;
  bool empty() const { return requirements_.empty(); }
  const std::vector<LabelRequirement>& requirements() const { return requirements_; }
  // Canonical form, e.g. "env=prod,!legacy,region in (eu,us)"; Parse(ToString()) round-trips.
  std::string ToString() const;

 private:
  std::vector<LabelRequirement> requirements_;
};

}  // namespace storeplane::core
