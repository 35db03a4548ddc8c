#pragma once
// One small error type for every library (kernels, engine, lsp, server).
//
// Library code returns Result<T> (or Status) instead of throwing across library boundaries; the protocol
// layers turn an Error into a JSON-RPC or HTTP error object in one place. Messages say what was expected and
// what was found: "kv_b_proj.weight: expected [4096, 512], got [4096, 256]".
#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace latent {

enum class ErrorCode {
  kInvalidArgument,  // the caller's input is malformed or out of range
  kNotFound,         // a file, tensor, document or request does not exist
  kUnsupported,      // valid input that Latent does not handle (yet)
  kIo,               // the operating system refused (open, read, mmap, socket)
  kCorrupt,          // a file is truncated or inconsistent with its own header
  kResourceExhausted,// a limit was hit (cache full, too many requests)
  kCancelled,        // the work was cancelled by the client
  kInternal,         // a bug: an invariant does not hold
};

const char* error_code_name(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  std::string to_string() const { return std::string(error_code_name(code)) + ": " + message; }
};

inline Error make_error(ErrorCode code, std::string message) { return Error{code, std::move(message)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit on purpose, like std::expected
  Result(Error error) : v_(std::move(error)) {}      // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  static Status Ok() { return Status(); }

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { assert(!ok_); return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace latent

// Propagate an error from an expression yielding Status or Result<T>.
#define LATENT_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    auto&& _latent_st = (expr);                      \
    if (!_latent_st.ok()) return _latent_st.error(); \
  } while (0)

#define LATENT_CONCAT_INNER(a, b) a##b
#define LATENT_CONCAT(a, b) LATENT_CONCAT_INNER(a, b)
// LATENT_ASSIGN_OR_RETURN(auto x, f()): binds the value or returns the error.
#define LATENT_ASSIGN_OR_RETURN(lhs, expr)                                    \
  auto LATENT_CONCAT(_latent_r_, __LINE__) = (expr);                         \
  if (!LATENT_CONCAT(_latent_r_, __LINE__).ok())                             \
    return LATENT_CONCAT(_latent_r_, __LINE__).error();                      \
  lhs = std::move(LATENT_CONCAT(_latent_r_, __LINE__)).value()
