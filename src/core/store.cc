#include "core/store.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "core/labels.h"

namespace storeplane::core {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// Printable ASCII is echoed as 'c'; anything else as its byte value, so a message
// never carries raw control bytes or broken UTF-8 back to a client.
std::string DescribeByte(char c) {
  const auto b = static_cast<unsigned char>(c);
  if (b >= 0x20 && b < 0x7f) return std::string("'") + c + "'";
  static constexpr char kHex[] = "0123456789ABCDEF";
  return std::string("byte 0x") + kHex[b >> 4] + kHex[b & 0xf];
}

// Decodes one UTF-8 code point starting at text[i]. Returns the number of bytes
// consumed, or 0 for an invalid sequence (truncated, overlong, surrogate, > U+10FFFF).
std::size_t DecodeUtf8(std::string_view text, std::size_t i, char32_t& cp) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  std::size_t len = 0;
  char32_t min = 0;
  if ((b0 & 0xe0) == 0xc0) {
    len = 2;
    cp = b0 & 0x1f;
    min = 0x80;
  } else if ((b0 & 0xf0) == 0xe0) {
    len = 3;
    cp = b0 & 0x0f;
    min = 0x800;
  } else if ((b0 & 0xf8) == 0xf0) {
    len = 4;
    cp = b0 & 0x07;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > text.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(text[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

bool IsControl(char32_t cp) { return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f); }

// Blank code points: ASCII space, the Unicode space separators, and the zero-width
// characters that render as nothing. A name made only of these is not a name.
bool IsBlank(char32_t cp) {
  return cp == 0x20 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200d) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202f || cp == 0x205f || cp == 0x2060 || cp == 0x3000 || cp == 0xfeff;
}

}  // namespace

std::string_view ToString(IsolationMode mode) {
  switch (mode) {
    case IsolationMode::kShared: return "shared";
    case IsolationMode::kDedicated: return "dedicated";
    case IsolationMode::kIsolated: return "isolated";
  }
  return "shared";
}

std::optional<IsolationMode> ParseIsolationMode(std::string_view text) {
  if (text == "shared") return IsolationMode::kShared;
  if (text == "dedicated") return IsolationMode::kDedicated;
  if (text == "isolated") return IsolationMode::kIsolated;
  return std::nullopt;
}

bool IsTightening(IsolationMode from, IsolationMode to) { return static_cast<int>(to) > static_cast<int>(from); }

std::string_view ToString(StoreState state) {
  switch (state) {
    case StoreState::kRegistered: return "registered";
    case StoreState::kProvisioning: return "provisioning";
    case StoreState::kProvisionFailed: return "provision_failed";
    case StoreState::kActive: return "active";
    case StoreState::kDecommissioning: return "decommissioning";
    case StoreState::kDecommissionFailed: return "decommission_failed";
    case StoreState::kDecommissioned: return "decommissioned";
  }
  return "registered";
}

std::optional<StoreState> ParseStoreState(std::string_view text) {
  for (StoreState s :
       {StoreState::kRegistered, StoreState::kProvisioning, StoreState::kProvisionFailed, StoreState::kActive,
        StoreState::kDecommissioning, StoreState::kDecommissionFailed, StoreState::kDecommissioned}) {
    if (ToString(s) == text) return s;
  }
  return std::nullopt;
}

Status ValidateStoreId(std::string_view id) {
  constexpr const char* kField = "id";
  if (id.empty()) return Error::Invalid("id must not be empty", kField);
  if (id.size() > kMaxStoreIdLength) {
    return Error::Invalid("id must be at most 63 characters long (got " + std::to_string(id.size()) + ")", kField);
  }
  for (std::size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    if (c >= 'A' && c <= 'Z') {
      return Error::Invalid("id must be lowercase: found " + DescribeByte(c) + " at position " + std::to_string(i),
                            kField);
    }
    if (!IsLowerAlnum(c) && c != '-') {
      return Error::Invalid("id must contain only lowercase letters a-z, digits 0-9 and '-': found " + DescribeByte(c) +
                                " at position " + std::to_string(i),
                            kField);
    }
  }
  if (id.front() == '-') return Error::Invalid("id must start with a letter or digit, not '-'", kField);
  if (id.back() == '-') return Error::Invalid("id must end with a letter or digit, not '-'", kField);
  return Status::Ok();
}

Status ValidateStoreName(std::string_view name) {
  constexpr const char* kField = "name";
  if (name.empty()) return Error::Invalid("name must not be empty", kField);
  if (name.size() > kMaxStoreNameBytes) {
    return Error::Invalid("name must be at most 200 bytes of UTF-8 (got " + std::to_string(name.size()) + ")", kField);
  }
  bool all_blank = true;
  for (std::size_t i = 0; i < name.size();) {
    char32_t cp = 0;
    const std::size_t len = DecodeUtf8(name, i, cp);
    if (len == 0) {
      return Error::Invalid("name must be valid UTF-8: invalid byte sequence at byte " + std::to_string(i), kField);
    }
    if (IsControl(cp)) {
      return Error::Invalid("name must not contain control characters: found one at byte " + std::to_string(i), kField);
    }
    if (!IsBlank(cp)) all_blank = false;
    i += len;
  }
  if (all_blank) return Error::Invalid("name must not be blank (only whitespace)", kField);
  return Status::Ok();
}

Status ValidateEnvironment(std::string_view env, const EnvironmentSet& allowed) {
  if (allowed.names.count(std::string(env)) > 0) return Status::Ok();
  std::string list;
  for (const std::string& n : allowed.names) {
    if (!list.empty()) list += ", ";
    list += n;
  }
  if (env.empty()) return Error::Invalid("environment must not be empty; allowed: " + list, "environment");
  return Error::Invalid("environment must be one of: " + list, "environment");
}

Result<Store> NewStore(const StoreRegistration& req, const EnvironmentSet& envs, std::int64_t now_ms) {
  if (Status s = ValidateStoreId(req.id); !s) return s.error();
  const std::string& name = req.name.empty() ? req.id : req.name;
  if (Status s = ValidateStoreName(name); !s) return s.error();
  if (Status s = ValidateEnvironment(req.environment, envs); !s) return s.error();
  const std::optional<IsolationMode> mode = ParseIsolationMode(req.isolation_mode);
  if (!mode) {
    return Error::Invalid("isolation_mode must be one of: shared, dedicated, isolated", "isolation_mode");
  }
  if (Status s = ValidateLabels(req.labels); !s) return s.error();

  Store store;
  store.id = req.id;
  store.name = name;
  store.environment = req.environment;
  store.isolation_mode = *mode;
  store.labels = req.labels;
  store.state = StoreState::kRegistered;
  store.version = 1;
  store.created_at_ms = now_ms;
  store.updated_at_ms = now_ms;
  return store;
}

Status ValidatePatch(const StorePatch& patch) {
  if (patch.name) {
    if (Status s = ValidateStoreName(*patch.name); !s) return s;
  }
  if (patch.labels) {
    if (Status s = ValidateLabels(*patch.labels); !s) return s;
  }
  return Status::Ok();
}

Store ApplyPatch(const Store& current, const StorePatch& patch, std::int64_t now_ms) {
  Store next = current;
  if (patch.name) next.name = *patch.name;
  if (patch.labels) next.labels = *patch.labels;
  next.version = current.version + 1;
  next.updated_at_ms = now_ms;
  return next;
}

}  // namespace storeplane::core
