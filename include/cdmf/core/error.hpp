#pragma once
/// One error mechanism for the library: exceptions carrying a one-line message that names
/// the file, line and problem where there is one. The executable catches them, makes every
/// rank agree that the run failed (see agree.hpp), prints one line and exits non-zero.
#include <mpi.h>

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace cdmf {

/// `text` with every control byte but the tab written as an escape (\0, \n, \r, \xNN): a NUL
/// or a newline read from a file would otherwise cut the one-line message short or split it.
/// Idempotent (a backslash is kept as it is), so messages passed between ranks stay the same.
std::string printable(const std::string& text);

/// A failure the user can act on (bad input, impossible option, unreadable file). The
/// message is stored printable: what() is a C string, which a NUL would end.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(printable(message)) {}
};

/// Throws Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

/// Throws Error when `condition` holds.
template <typename... Args>
void fail_if(bool condition, fmt::format_string<Args...> format, Args&&... args) {
  if (condition) throw Error(fmt::format(format, std::forward<Args>(args)...));
}

/// Turns a non-success MPI return code into an Error naming the call.
void check_mpi(int code, const char* call);

}  // namespace cdmf
