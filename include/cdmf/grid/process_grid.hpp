#pragma once
/// The 2-D process grid (DESIGN.md section 2, layer 1): an owned duplicate of the caller's
/// communicator, the Pr x Pc grid in row-major rank order, its row and column communicators,
/// and the BLACS context on the same grid. Move-only; must be destroyed before MPI_Finalize.
#include <mpi.h>

#include <cstdint>
#include <string>

namespace cdmf {

/// Grid shape Pr x Pc.
struct GridShape {
  int rows = 1;
  int cols = 1;
};

/// The near-square shape for `ranks` processes: Pr the largest divisor <= sqrt(ranks).
GridShape near_square_shape(int ranks);

/// The default shape for an m x n problem on `ranks` processes: the Pr x Pc that minimises
/// m / Pr + n / Pc, the rows of the thin factors each rank holds and sums per iteration in the
/// sparse strategy (a tall matrix splits its rows: 480,189 x 17,770 on 2 ranks is 2x1), when
/// it saves at least a quarter against the near-square shape, which is kept otherwise (a
/// square or mildly rectangular matrix). Pr <= m and Pc <= n where possible.
GridShape shape_for_matrix(int ranks, std::int64_t rows, std::int64_t cols);

/// Parses "PrxPc" (e.g. "2x3"); throws Error when malformed or Pr*Pc != ranks.
GridShape parse_grid_shape(const std::string& text, int ranks);

class ProcessGrid {
 public:
  /// Collective over `comm`. `shape` must multiply to the size of `comm`.
  ProcessGrid(MPI_Comm comm, GridShape shape);
  /// Near-square grid on `comm`.
  explicit ProcessGrid(MPI_Comm comm);
  ~ProcessGrid();
  ProcessGrid(const ProcessGrid&) = delete;
  ProcessGrid& operator=(const ProcessGrid&) = delete;
  ProcessGrid(ProcessGrid&& other) noexcept;
  ProcessGrid& operator=(ProcessGrid&&) = delete;

  MPI_Comm comm() const { return comm_; }
  /// Ranks of the same grid row (varying column), ordered by column.
  MPI_Comm row_comm() const { return row_comm_; }
  /// Ranks of the same grid column (varying row), ordered by row.
  MPI_Comm col_comm() const { return col_comm_; }
  int blacs_context() const { return context_; }
  int rank() const { return rank_; }
  int size() const { return shape_.rows * shape_.cols; }
  int rows() const { return shape_.rows; }
  int cols() const { return shape_.cols; }
  int my_row() const { return my_row_; }
  int my_col() const { return my_col_; }
  GridShape shape() const { return shape_; }
  /// Rank in comm() of grid position (row, col).
  int rank_of(int row, int col) const { return row * shape_.cols + col; }
  bool is_root() const { return rank_ == 0; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Comm row_comm_ = MPI_COMM_NULL;
  MPI_Comm col_comm_ = MPI_COMM_NULL;
  int blacs_handle_ = -1;
  int context_ = -1;
  GridShape shape_;
  int rank_ = 0;
  int my_row_ = 0;
  int my_col_ = 0;
};

/// Starts MPI and stops it (and BLACS) in RAII order for executables and test mains.
class Environment {
 public:
  Environment(int* argc, char*** argv);
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;
};

}  // namespace cdmf
