#include "cdmf/io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"

namespace cdmf {

namespace {

/// Creates the temporary on rank 0's side; returns its name, or "" with `message` set.
std::string create_temporary(const std::string& path, std::string& message) {
  const std::filesystem::path target(path);
  const std::filesystem::path directory = target.has_parent_path() ? target.parent_path() : ".";
  std::string name = (directory / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
  const int fd = ::mkstemp(name.data());
  if (fd < 0) {
    message = fmt::format("cannot write {}: directory {} is not writable ({})", path,
                          directory.string(), std::strerror(errno));
    return "";
  }
  // mkstemp makes the file private (0600); the final file gets the usual mode for new files.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd, 0666 & ~mask);
  ::close(fd);
  return name;
}

/// Makes a rename in the directory of `path` durable (best effort: some file systems refuse
/// to sync a directory, and the file itself is complete either way).
void sync_directory_of(const std::string& path) {
  const std::filesystem::path target(path);
  const std::string directory = target.has_parent_path() ? target.parent_path().string() : ".";
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::string broadcast(MPI_Comm comm, std::string text) {
  int length = static_cast<int>(text.size());
  check_mpi(MPI_Bcast(&length, 1, MPI_INT, 0, comm), "MPI_Bcast");
  text.resize(static_cast<size_t>(length));
  check_mpi(MPI_Bcast(text.data(), length, MPI_CHAR, 0, comm), "MPI_Bcast");
  return text;
}

}  // namespace

void write_atomically(MPI_Comm comm, const std::string& path,
                      const std::function<void(const std::string& temporary)>& write) {
  fail_if(path.empty(), "cannot write a file with an empty name");
  int rank = 0;
  check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  std::string message;
  std::string temporary = rank == 0 ? create_temporary(path, message) : std::string();
  agree_on_error(comm, message);
  temporary = broadcast(comm, temporary);

  std::string failure;
  try {
    run_agreed(comm, [&] { write(temporary); });
  } catch (const std::exception& e) {
    failure = fmt::format("{}: not written: {}", path, e.what());
  }
  // Every rank has closed the temporary by now (write returned or threw on all of them).
  if (rank == 0) {
    if (failure.empty() && std::rename(temporary.c_str(), path.c_str()) != 0)
      failure = fmt::format("{}: cannot rename the temporary file {} to it ({})", path, temporary,
                            std::strerror(errno));
    if (!failure.empty()) std::remove(temporary.c_str());
    if (failure.empty()) sync_directory_of(path);
  }
  agree_on_error(comm, failure);
}

}  // namespace cdmf
