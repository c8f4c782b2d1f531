#include "core/label_selector.h"

#include <algorithm>
#include <cstddef>
#include <string>
#include <tuple>
#include <utility>

#include "core/labels.h"

namespace storeplane::core {
namespace {

constexpr char kField[] = "selector";

bool IsWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}
bool IsKeyChar(char c) { return IsWordChar(c) || c == '/'; }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view OpText(LabelRequirement::Op op) {
  switch (op) {
    case LabelRequirement::Op::kEquals: return "=";
    case LabelRequirement::Op::kNotEquals: return "!=";
    case LabelRequirement::Op::kIn: return "in";
    case LabelRequirement::Op::kNotIn: return "notin";
    case LabelRequirement::Op::kExists: return "";
    case LabelRequirement::Op::kDoesNotExist: return "!";
  }
  return "";
}

// A recursive-descent reader over the selector text. Every error names the offset
// (0-based) and what was found there, so a typo can be located in a long selector.
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<std::vector<LabelRequirement>> Run() {
    std::vector<LabelRequirement> out;
    SkipSpace();
    if (AtEnd()) return out;  // empty (or blank) text: match everything
    while (true) {
      Result<LabelRequirement> req = Requirement();
      if (!req) return req.error();
      out.push_back(std::move(*req));
      SkipSpace();
      if (AtEnd()) return out;
      if (Peek() != ',') return Fail("expected ',' or end of selector, found " + Found());
      ++pos_;
    }
  }

 private:
  Result<LabelRequirement> Requirement() {
    SkipSpace();
    if (AtEnd() || Peek() == ',') return Fail("empty requirement (stray ',')");
    LabelRequirement req;
    if (Peek() == '!') {
      ++pos_;
      SkipSpace();
      if (Status s = Key(req.key, "after '!'"); !s) return s.error();
      req.op = LabelRequirement::Op::kDoesNotExist;
      SkipSpace();
      if (!AtEnd() && Peek() != ',') {
        return Fail("'!" + req.key + "' tests that the key is absent and takes no operator or value, found " + Found());
      }
      return req;
    }
    if (Status s = Key(req.key, ""); !s) return s.error();
    SkipSpace();
    if (AtEnd() || Peek() == ',') {
      req.op = LabelRequirement::Op::kExists;
      return req;
    }
    if (text_.substr(pos_).starts_with("==")) {
      pos_ += 2;
      req.op = LabelRequirement::Op::kEquals;
    } else if (Peek() == '=') {
      pos_ += 1;
      req.op = LabelRequirement::Op::kEquals;
    } else if (text_.substr(pos_).starts_with("!=")) {
      pos_ += 2;
      req.op = LabelRequirement::Op::kNotEquals;
    } else if (IsWordChar(Peek())) {
      const std::size_t at = pos_;
      const std::string_view word = Read(IsWordChar);
      if (word == "in") {
        req.op = LabelRequirement::Op::kIn;
      } else if (word == "notin") {
        req.op = LabelRequirement::Op::kNotIn;
      } else {
        return FailAt(at, "unknown operator '" + std::string(word) + "' after key '" + req.key +
                              "'; expected =, ==, !=, in or notin");
      }
      if (Status s = ValueList(req); !s) return s.error();
      return req;
    } else {
      return Fail("expected =, ==, !=, in, notin, ',' or end after key '" + req.key + "', found " + Found());
    }
    SkipSpace();
    std::string value;
    if (Status s = Value(value, req.key); !s) return s.error();
    req.values.push_back(std::move(value));
    return req;
  }

  // "(a, b, c)" after in/notin; at least one value. As in Kubernetes, an empty entry
  // ("(a,)") is the empty value.
  Status ValueList(LabelRequirement& req) {
    SkipSpace();
    if (AtEnd() || Peek() != '(') {
      return Fail("expected '(' after '" + std::string(OpText(req.op)) + "', found " + Found());
    }
    ++pos_;
    SkipSpace();
    if (!AtEnd() && Peek() == ')') {
      return Fail("'" + std::string(OpText(req.op)) + "' for key '" + req.key + "' needs at least one value");
    }
    while (true) {
      SkipSpace();
      std::string value;
      if (Status s = Value(value, req.key); !s) return s;
      req.values.push_back(std::move(value));
      SkipSpace();
      if (AtEnd()) return Fail("value list for key '" + req.key + "' is missing its closing ')'");
      if (Peek() == ')') {
        ++pos_;
        return Status::Ok();
      }
      if (Peek() != ',') return Fail("expected ',' or ')' in value list for key '" + req.key + "', found " + Found());
      ++pos_;
    }
  }

  Status Key(std::string& key, std::string_view context) {
    const std::size_t at = pos_;
    key = std::string(Read(IsKeyChar));
    if (key.empty()) {
      std::string where = context.empty() ? "" : " " + std::string(context);
      return Fail("expected a label key" + where + ", found " + Found());
    }
    if (Status s = ValidateLabelKey(key); !s) return FailAt(at, "invalid key '" + key + "': " + s.error().message);
    return Status::Ok();
  }

  Status Value(std::string& value, const std::string& key) {
    const std::size_t at = pos_;
    value = std::string(Read(IsWordChar));
    if (Status s = ValidateLabelValue(value); !s) {
      return FailAt(at, "invalid value for key '" + key + "': " + s.error().message);
    }
    return Status::Ok();
  }

  template <typename Pred>
  std::string_view Read(Pred pred) {
    const std::size_t start = pos_;
    while (!AtEnd() && pred(Peek())) ++pos_;
    return text_.substr(start, pos_ - start);
  }

  void SkipSpace() {
    while (!AtEnd() && IsSpace(Peek())) ++pos_;
  }
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return text_[pos_]; }

  std::string Found() const {
    if (AtEnd()) return "end of selector";
    const auto b = static_cast<unsigned char>(Peek());
    if (b >= 0x20 && b < 0x7f) return std::string("'") + Peek() + "'";
    static constexpr char kHex[] = "0123456789ABCDEF";
    return std::string("byte 0x") + kHex[b >> 4] + kHex[b & 0xf];
  }

  Error Fail(std::string what) const { return FailAt(pos_, std::move(what)); }
  Error FailAt(std::size_t at, std::string what) const {
    return Error::Invalid("invalid selector at offset " + std::to_string(at) + ": " + what, kField);
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace

Result<LabelSelector> LabelSelector::Parse(std::string_view text) {
  Result<std::vector<LabelRequirement>> reqs = Parser(text).Run();
  if (!reqs) return reqs.error();
  // Canonical order, so equivalent selectors compare and print alike: values sorted and
  // unique, requirements sorted by (key, op, values) and unique.
  for (LabelRequirement& r : *reqs) {
    std::sort(r.values.begin(), r.values.end());
    r.values.erase(std::unique(r.values.begin(), r.values.end()), r.values.end());
  }
  auto as_tuple = [](const LabelRequirement& r) { return std::tie(r.key, r.op, r.values); };
  std::sort(reqs->begin(), reqs->end(),
            [&](const LabelRequirement& a, const LabelRequirement& b) { return as_tuple(a) < as_tuple(b); });
  reqs->erase(
      std::unique(reqs->begin(), reqs->end(),
                  [&](const LabelRequirement& a, const LabelRequirement& b) { return as_tuple(a) == as_tuple(b); }),
      reqs->end());
  LabelSelector selector;
  selector.requirements_ = std::move(*reqs);
  return selector;
}

bool LabelSelector::Matches(const Labels& labels) const {
  for (const LabelRequirement& r : requirements_) {
    const auto it = labels.find(r.key);
    const bool present = it != labels.end();
    const auto in_values = [&] {
      return present && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
    };
    bool ok = false;
    switch (r.op) {
      case LabelRequirement::Op::kEquals:
      case LabelRequirement::Op::kIn: ok = in_values(); break;
      case LabelRequirement::Op::kNotEquals:  // as in Kubernetes: an absent key matches
      case LabelRequirement::Op::kNotIn: ok = !in_values(); break;
      case LabelRequirement::Op::kExists: ok = present; break;
      case LabelRequirement::Op::kDoesNotExist: ok = !present; break;
    }
    if (!ok) return false;
  }
  return true;
}

std::string LabelSelector::ToString() const {
  std::string out;
  for (const LabelRequirement& r : requirements_) {
    if (!out.empty()) out += ',';
    switch (r.op) {
      case LabelRequirement::Op::kEquals:
      case LabelRequirement::Op::kNotEquals:
        out += r.key;
        out += OpText(r.op);
        out += r.values.empty() ? std::string() : r.values.front();
        break;
      case LabelRequirement::Op::kIn:
      case LabelRequirement::Op::kNotIn: {
        out += r.key;
        out += ' ';
        out += OpText(r.op);
        out += " (";
        for (std::size_t i = 0; i < r.values.size(); ++i) {
          if (i > 0) out += ',';
          out += r.values[i];
        }
        // The empty value alone: "()" would not parse (a list needs a value); "(,)" does.
        if (r.values.size() == 1 && r.values.front().empty()) out += ',';
        out += ')';
        break;
      }
      case LabelRequirement::Op::kExists: out += r.key; break;
      case LabelRequirement::Op::kDoesNotExist:
        out += '!';
        out += r.key;
        break;
    }
  }
  return out;
}

}  // namespace storeplane::core
