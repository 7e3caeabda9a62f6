#include "cdmf/io/output_files.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"

namespace cdmf {

namespace fs = std::filesystem;

namespace {
/// Why `path` cannot be written, or "" when it can.
std::string output_file_problem(const std::string& path) {
  const fs::path target(path);
  const fs::path directory = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code code;
  if (fs::is_directory(target, code)) return "is a directory";
  if (!fs::exists(directory, code))
    return fmt::format("directory {} does not exist", directory.string());
  if (!fs::is_directory(directory, code))
    return fmt::format("{} is not a directory", directory.string());
  const std::string problem = directory_write_problem(directory.string());
  if (!problem.empty())
    return fmt::format("directory {} is not writable ({})", directory.string(), problem);
  return "";
}
}  // namespace

std::string directory_write_problem(const std::string& directory) {
  std::string probe = (fs::path(directory) / ".cdmf-write-test.XXXXXX").string();
  const int fd = ::mkstemp(probe.data());
  if (fd < 0) return std::strerror(errno);
  ::close(fd);
  ::unlink(probe.c_str());
  return "";
}

void check_output_files(MPI_Comm comm, const std::vector<OutputFile>& outputs) {
  int rank = 0;
  check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  run_agreed(comm, [&] {
    if (rank != 0) return;
    for (const OutputFile& output : outputs) {
      if (output.path.empty()) continue;
      const std::string problem = output_file_problem(output.path);
      fail_if(!problem.empty(), "{} {}: {}", output.option, output.path, problem);
    }
  });
}

}  // namespace cdmf
