#pragma once
/// Writing a file so that a crash or a failure never leaves a partial file under its real
/// name (DESIGN.md section 3; internal to the I/O layer, shared by factor, truth and
/// checkpoint files).
#include <mpi.h>

#include <functional>
#include <string>

namespace cdmf {

/// Collective over `comm`: rank 0 creates a fresh temporary file ".NAME.tmp.XXXXXX" in the
/// directory of `path` (the same file system, so the final rename is atomic), every rank runs
/// `write(temporary)`, which must have closed the file on return, and once every rank agrees
/// it succeeded, rank 0 renames the temporary to `path`. On any failure the temporary is
/// removed, an existing file at `path` is left untouched and every rank throws the same Error
/// naming `path` ("cannot write PATH: directory DIR is not writable (...)" when the
/// temporary cannot be created).
void write_atomically(MPI_Comm comm, const std::string& path,
                      const std::function<void(const std::string& temporary)>& write);

}  // namespace cdmf
