// One error vocabulary for every layer: an ErrorCode, a safe message, and a Result<T>
// that holds either a value or an Error. The core and the storage layer never throw
// across their boundary; they return these. HTTP status is chosen in server/problem.cc.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace storeplane {

enum class ErrorCode {
  kInvalidArgument,       // malformed or semantically invalid input (422/400)
  kMalformedRequest,      // bytes that do not parse: bad JSON, bad UTF-8 (400)
  kNotFound,              // 404
  kAlreadyExists,         // 409: the id is taken (ids are never reused)
  kConflict,              // 409: the change conflicts with current state
  kPreconditionFailed,    // 412: If-Match did not match
  kPreconditionRequired,  // 428: If-Match missing where required
  kUnauthenticated,       // 401
  kPermissionDenied,      // 403
  kPayloadTooLarge,       // 413
  kUnsupportedMediaType,  // 415
  kResourceExhausted,     // 429
  kUnavailable,           // 503
  kInternal,              // 500
};

std::string_view ErrorCodeName(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;  // safe to show to a client: no secrets, no internals
  std::string field;    // JSON pointer-ish name of the offending field, or empty

  static Error Invalid(std::string message, std::string field = {}) {
    return Error{ErrorCode::kInvalidArgument, std::move(message), std::move(field)};
  }
  static Error NotFound(std::string message) { return Error{ErrorCode::kNotFound, std::move(message), {}}; }
  static Error Internal(std::string message) { return Error{ErrorCode::kInternal, std::move(message), {}}; }
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  static Status Ok() { return {}; }

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const {
    assert(!ok());
    return *error_;
  }

 private:
  std::optional<Error> error_;
};

}  // namespace storeplane

// Returns the Status of `expr` from the enclosing function when it is an error.
#define SP_RETURN_IF_ERROR(expr)                      \
  do {                                                \
    if (auto sp_status_ = (expr); !sp_status_.ok()) { \
      return sp_status_.error();                      \
    }                                                 \
  } while (false)
