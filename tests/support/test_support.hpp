#pragma once
/// Helpers shared by the test suite: sub-communicators for comparing process-grid shapes in
/// one run, temporary directories, and relative errors.
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

/// A fresh directory under the build tree, the same name on every rank (collective).
std::string temp_dir(const std::string& tag);

/// Writes `text` to `path` (rank 0 only, then barrier on the world).
void write_text_file(const std::string& path, const std::string& text);

/// ||a - b||_F / ||b||_F (||a - b|| when b is zero).
double relative_error(const std::vector<double>& a, const std::vector<double>& b);

/// Broadcasts a column-major vector from world rank 0 (size too).
std::vector<double> broadcast_from_root(std::vector<double> data);

}  // namespace cdmf::test
