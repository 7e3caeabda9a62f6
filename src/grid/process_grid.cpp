#include "cdmf/grid/process_grid.hpp"

#include <cmath>
#include <regex>

#include "cdmf/core/error.hpp"
#include "cdmf/linalg/scalapack.hpp"

namespace cdmf {

GridShape near_square_shape(int ranks) {
  int rows = static_cast<int>(std::sqrt(static_cast<double>(ranks)));
  while (rows > 1 && ranks % rows != 0) --rows;
  if (rows < 1) rows = 1;
  return {rows, ranks / rows};
}

GridShape shape_for_matrix(int ranks, std::int64_t rows, std::int64_t cols) {
  const GridShape square = near_square_shape(ranks);
  GridShape best = square;
  const auto cost = [&](GridShape shape) {
    return static_cast<double>(rows) / shape.rows + static_cast<double>(cols) / shape.cols;
  };
  const auto fits = [&](GridShape shape) { return shape.rows <= rows && shape.cols <= cols; };
  for (int pr = 1; pr <= ranks; ++pr) {
    if (ranks % pr != 0) continue;
    const GridShape shape{pr, ranks / pr};
    if (!fits(shape)) continue;
    if (!fits(best) || cost(shape) < cost(best) * (1.0 - 1e-12)) best = shape;
  }
  // Only a clear gain leaves the near-square shape (mildly rectangular problems, and runs
  // restarted on the default grid, keep theirs).
  if (fits(square) && cost(best) > 0.75 * cost(square)) return square;
  return best;
}

GridShape parse_grid_shape(const std::string& text, int ranks) {
  static const std::regex pattern(R"(^\s*([0-9]+)\s*[xX]\s*([0-9]+)\s*$)");
  std::smatch match;
  fail_if(!std::regex_match(text, match, pattern), "--grid '{}': expected PrxPc, e.g. 2x2", text);
  GridShape shape{std::stoi(match[1]), std::stoi(match[2])};
  fail_if(shape.rows < 1 || shape.cols < 1 || shape.rows * shape.cols != ranks,
          "--grid {}x{} needs {} ranks but the job has {}", shape.rows, shape.cols,
          shape.rows * shape.cols, ranks);
  return shape;
}

ProcessGrid::ProcessGrid(MPI_Comm comm) : ProcessGrid(comm, [comm] {
  int size = 1;
  MPI_Comm_size(comm, &size);
  return near_square_shape(size);
}()) {}

ProcessGrid::ProcessGrid(MPI_Comm comm, GridShape shape) : shape_(shape) {
  int size = 1;
  check_mpi(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  fail_if(shape.rows * shape.cols != size, "grid {}x{} does not match {} ranks", shape.rows,
          shape.cols, size);
  check_mpi(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
  MPI_Comm_rank(comm_, &rank_);
  my_row_ = rank_ / shape.cols;
  my_col_ = rank_ % shape.cols;
  check_mpi(MPI_Comm_split(comm_, my_row_, my_col_, &row_comm_), "MPI_Comm_split");
  check_mpi(MPI_Comm_split(comm_, my_col_, my_row_, &col_comm_), "MPI_Comm_split");
  blacs_handle_ = Csys2blacs_handle(comm_);
  context_ = blacs_handle_;
  Cblacs_gridinit(&context_, "Row", shape.rows, shape.cols);
  int rows = 0, cols = 0, row = -1, col = -1;
  Cblacs_gridinfo(context_, &rows, &cols, &row, &col);
  // The observation layout and the block-cyclic layout must name the same process.
  fail_if(row != my_row_ || col != my_col_, "BLACS grid position ({},{}) differs from MPI ({},{})",
          row, col, my_row_, my_col_);
}

ProcessGrid::ProcessGrid(ProcessGrid&& other) noexcept
    : comm_(other.comm_), row_comm_(other.row_comm_), col_comm_(other.col_comm_),
      blacs_handle_(other.blacs_handle_), context_(other.context_), shape_(other.shape_),
      rank_(other.rank_), my_row_(other.my_row_), my_col_(other.my_col_) {
  other.comm_ = other.row_comm_ = other.col_comm_ = MPI_COMM_NULL;
  other.blacs_handle_ = other.context_ = -1;
}

ProcessGrid::~ProcessGrid() {
  if (context_ >= 0) Cblacs_gridexit(context_);
  if (blacs_handle_ >= 0) Cfree_blacs_system_handle(blacs_handle_);
  if (row_comm_ != MPI_COMM_NULL) MPI_Comm_free(&row_comm_);
  if (col_comm_ != MPI_COMM_NULL) MPI_Comm_free(&col_comm_);
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

Environment::Environment(int* argc, char*** argv) { MPI_Init(argc, argv); }

Environment::~Environment() {
  Cblacs_exit(1);  // 1: leave MPI running, we finalize it ourselves
  MPI_Finalize();
}

}  // namespace cdmf
