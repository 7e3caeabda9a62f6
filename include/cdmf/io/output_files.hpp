#pragma once
/// Start-up checks of the files a command will write, so that a typo in an output path fails
/// before the work rather than after it (DESIGN.md section 4).
#include <mpi.h>

#include <string>
#include <vector>

namespace cdmf {

/// A file a command will write and the option that names it ("--summary"), for the message.
struct OutputFile {
  std::string option;
  std::string path;
};

/// Why no file can be created in `directory` (the strerror text), or "" when one can. Creates
/// and removes a probe file: root ignores permission bits, so only a real create tells (a
/// read-only mount, /proc). Local: no communication.
std::string directory_write_problem(const std::string& directory);

/// A file a command reads and the option that names it ("--data").
using InputFile = OutputFile;

/// True when `a` and `b` name the same file: the same device and inode when both exist
/// (through hard and symbolic links alike), else the same path once symbolic links and
/// ".." are resolved (an output not yet written that would land on the other). Local.
bool same_file(const std::string& a, const std::string& b);

/// Collective over `comm`: rank 0 checks every output with a non-empty path (its directory
/// exists and accepts a new file, the path is not itself a directory, it is not the same
/// file as any of `inputs` nor as another output), and every rank throws the same Error
/// naming the first that fails, e.g. "--summary out/run.json: directory out does not exist"
/// or "--summary v.tsv: the same file as --data v.tsv (it would be overwritten)".
void check_output_files(MPI_Comm comm, const std::vector<OutputFile>& outputs,
                        const std::vector<InputFile>& inputs = {});

}  // namespace cdmf
