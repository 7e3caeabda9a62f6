#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"

#include <vector>

namespace cdmf {

std::string printable(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte >= 0x20 && byte != 0x7f) || c == '\t') {  // a tab separates fields: shown
      out += c;
      continue;
    }
    switch (c) {
      case '\0': out += "\\0"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += fmt::format("\\x{:02x}", byte);
    }
  }
  return out;
}

void check_mpi(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  fail("{} failed: {}", call, std::string(text, static_cast<size_t>(length)));
}

void agree_on_error(MPI_Comm comm, const std::string& local_message) {
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  // Lowest failing rank, or `size` when none failed.
  int candidate = local_message.empty() ? size : rank;
  int first = size;
  check_mpi(MPI_Allreduce(&candidate, &first, 1, MPI_INT, MPI_MIN, comm), "MPI_Allreduce");
  if (first == size) return;
  int length = rank == first ? static_cast<int>(local_message.size()) : 0;
  check_mpi(MPI_Bcast(&length, 1, MPI_INT, first, comm), "MPI_Bcast");
  std::string message(static_cast<size_t>(length), '\0');
  if (rank == first) message = local_message;
  check_mpi(MPI_Bcast(message.data(), length, MPI_CHAR, first, comm), "MPI_Bcast");
  throw Error(message);
}

}  // namespace cdmf
