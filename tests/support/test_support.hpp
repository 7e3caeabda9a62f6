#pragma once
/// Helpers shared by the test suite: sub-communicators for comparing process-grid shapes in
/// one run, temporary directories and files, errors agreed across ranks, and relative errors.
#include <mpi.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cdmf/grid/process_grid.hpp"

namespace cdmf::test {

/// Ranks of MPI_COMM_WORLD.
int world_size();
int world_rank();

/// Runs `body(grid)` on a Pr x Pc grid built from the first Pr*Pc world ranks (others skip).
/// Returns false (and runs nothing) when the world is too small. Collective over the world.
bool on_grid(GridShape shape, const std::function<void(const ProcessGrid&)>& body);

/// Every grid shape that fits in the world among 1x1, 1x2, 2x1, 2x2.
std::vector<GridShape> available_shapes();

/// Runs `body(grid)` on a near-square grid over every world rank.
void on_world_grid(const std::function<void(const ProcessGrid&)>& body);

/// Runs `work` on rank 0 of `comm` only, then waits there (for serial file edits and checks).
void on_root(MPI_Comm comm, const std::function<void()>& work);

/// Expects `work` to throw cdmf::Error on every rank of `comm`, with the same message
/// everywhere, naming `file` and containing `phrase`. Collective over `comm`.
void expect_error(MPI_Comm comm, const std::string& file, const std::string& phrase,
                  const std::function<void()>& work);

/// A fresh directory under the build tree, the same name on every rank (collective).
std::string temp_dir(const std::string& tag);

/// Writes `text` to `path` (rank 0 only, then barrier on the world).
void write_text_file(const std::string& path, const std::string& text);

/// Makes `target` a copy of `source` changed by `edit(target)` (world rank 0, then barrier):
/// how the tests hand-make damaged files from a good one.
void derive_file(const std::string& source, const std::string& target,
                 const std::function<void(const std::string& target)>& edit);

/// The whole contents of `path` ("" when it cannot be read).
std::string file_bytes(const std::string& path);

/// Names of the entries of `directory`, sorted (a temporary left behind shows up here).
std::vector<std::string> file_names_in(const std::string& directory);

/// ||a - b||_F / ||b||_F (||a - b|| when b is zero).
double relative_error(const std::vector<double>& a, const std::vector<double>& b);

/// Broadcasts a column-major vector from world rank 0 (size too).
std::vector<double> broadcast_from_root(std::vector<double> data);

}  // namespace cdmf::test
