#include "cdmf/io/output_files.hpp"

#include <sys/stat.h>
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

bool same_file(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return false;
  struct stat first {}, second {};
  if (::stat(a.c_str(), &first) == 0 && ::stat(b.c_str(), &second) == 0)
    return first.st_dev == second.st_dev && first.st_ino == second.st_ino;
  std::error_code code_a, code_b;
  const fs::path resolved_a = fs::weakly_canonical(a, code_a);
  const fs::path resolved_b = fs::weakly_canonical(b, code_b);
  return !code_a && !code_b && resolved_a == resolved_b;
}

std::string directory_write_problem(const std::string& directory) {
  std::string probe = (fs::path(directory) / ".cdmf-write-test.XXXXXX").string();
  const int fd = ::mkstemp(probe.data());
  if (fd < 0) return std::strerror(errno);
  ::close(fd);
  ::unlink(probe.c_str());
  return "";
}

void check_output_files(MPI_Comm comm, const std::vector<OutputFile>& outputs,
                        const std::vector<InputFile>& inputs) {
  int rank = 0;
  check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  run_agreed(comm, [&] {
    if (rank != 0) return;
    for (size_t k = 0; k < outputs.size(); ++k) {
      const OutputFile& output = outputs[k];
      if (output.path.empty()) continue;
      // Before the directory checks: an input is never damaged, whatever else is wrong.
      for (const InputFile& input : inputs)
        fail_if(same_file(output.path, input.path),
                "{} {}: the same file as {} {} (it would be overwritten)", output.option,
                output.path, input.option, input.path);
      for (size_t other = 0; other < k; ++other)
        fail_if(same_file(output.path, outputs[other].path),
                "{} {}: the same file as {} {} (one would overwrite the other)", output.option,
                output.path, outputs[other].option, outputs[other].path);
      const std::string problem = output_file_problem(output.path);
      fail_if(!problem.empty(), "{} {}: {}", output.option, output.path, problem);
    }
  });
}

}  // namespace cdmf
