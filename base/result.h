// Result<T, E>: a value or an error, the one way errors travel in vmlaunch.
// Exceptions never cross module boundaries; a module catches what its libraries throw and returns
// one of these. Each module has its own error type E (config::Diagnostic, hw::BusError, ...);
// base::Error is the plain "message with context" type for code that needs nothing richer.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace base {

// Taking the value of a failed Result (or the error of a good one) is a bug in the caller; it aborts
// in every build mode rather than reading the wrong variant member.
[[noreturn]] inline void result_misuse(const char* what) {
  std::fprintf(stderr, "vmlaunch: internal error: %s\n", what);
  std::abort();
}

template <typename E>
struct Unexpected {
  E error;
};

template <typename E>
Unexpected<std::decay_t<E>> fail(E&& error) {
  return Unexpected<std::decay_t<E>>{std::forward<E>(error)};
}

template <typename T, typename E>
class [[nodiscard]] Result {
 public:
  Result(T value) : m_storage(std::in_place_index<0>, std::move(value)) {}
  template <typename F, typename = std::enable_if_t<std::is_convertible_v<F, E>>>
  Result(Unexpected<F> error) : m_storage(std::in_place_index<1>, E(std::move(error.error))) {}

  bool ok() const { return m_storage.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    if (!ok()) result_misuse("value() of a failed Result");
    return std::get<0>(m_storage);
  }
  const T& value() const& {
    if (!ok()) result_misuse("value() of a failed Result");
    return std::get<0>(m_storage);
  }
  T&& value() && {
    if (!ok()) result_misuse("value() of a failed Result");
    return std::get<0>(std::move(m_storage));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  E& error() & {
    if (ok()) result_misuse("error() of a successful Result");
    return std::get<1>(m_storage);
  }
  const E& error() const& {
    if (ok()) result_misuse("error() of a successful Result");
    return std::get<1>(m_storage);
  }
  E&& error() && {
    if (ok()) result_misuse("error() of a successful Result");
    return std::get<1>(std::move(m_storage));
  }

  T value_or(T fallback) const& { return ok() ? value() : std::move(fallback); }

 private:
  std::variant<T, E> m_storage;
};

// Result<void, E>: success carries nothing.
template <typename E>
class [[nodiscard]] Result<void, E> {
 public:
  Result() = default;
  template <typename F, typename = std::enable_if_t<std::is_convertible_v<F, E>>>
  Result(Unexpected<F> error) : m_error(E(std::move(error.error))), m_failed(true) {}

  bool ok() const { return !m_failed; }
  explicit operator bool() const { return ok(); }
  void value() const { if (!ok()) result_misuse("value() of a failed Result"); }
  E& error() & {
    if (ok()) result_misuse("error() of a successful Result");
    return m_error;
  }
  const E& error() const& {
    if (ok()) result_misuse("error() of a successful Result");
    return m_error;
  }
  E&& error() && {
    if (ok()) result_misuse("error() of a successful Result");
    return std::move(m_error);
  }

 private:
  E m_error{};
  bool m_failed = false;
};

// The plain error: what went wrong, with the context prepended as it travels up
// ("loading kernel: open guests/Image: No such file or directory").
struct Error {
  std::string message;

  Error() = default;
  Error(std::string msg) : message(std::move(msg)) {}
  Error(const char* msg) : message(msg) {}

  Error with_context(const std::string& context) const { return Error(context + ": " + message); }
};

template <typename T>
using ErrorOr = Result<T, Error>;

}  // namespace base

// TRY(expr): evaluate a Result; on error return it from the enclosing function, else yield the value.
// Uses a GNU statement expression (g++ and clang both support it), as SerenityOS's TRY does.
#define TRY(expr)                                          \
  ({                                                       \
    auto _try_result = (expr);                             \
    if (!_try_result.ok())                                 \
      return ::base::fail(std::move(_try_result).error()); \
    std::move(_try_result).value();                        \
  })
