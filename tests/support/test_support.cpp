#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "cdmf/core/error.hpp"

namespace cdmf::test {

int world_size() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

bool on_grid(GridShape shape, const std::function<void(const ProcessGrid&)>& body) {
  const int needed = shape.rows * shape.cols;
  if (needed > world_size()) return false;
  MPI_Comm sub = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, world_rank() < needed ? 0 : MPI_UNDEFINED, world_rank(), &sub);
  if (sub != MPI_COMM_NULL) {
    {
      ProcessGrid grid(sub, shape);
      body(grid);
    }
    MPI_Comm_free(&sub);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return true;
}

std::vector<GridShape> available_shapes() {
  std::vector<GridShape> shapes;
  for (GridShape s : {GridShape{1, 1}, GridShape{1, 2}, GridShape{2, 1}, GridShape{2, 2}})
    if (s.rows * s.cols <= world_size()) shapes.push_back(s);
  return shapes;
}

void on_world_grid(const std::function<void(const ProcessGrid&)>& body) {
  on_grid(near_square_shape(world_size()), body);
}

void on_root(MPI_Comm comm, const std::function<void()>& work) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  if (rank == 0) work();
  MPI_Barrier(comm);
}

void expect_error(MPI_Comm comm, const std::string& file, const std::string& phrase,
                  const std::function<void()>& work) {
  std::string message = "(no error)";
  try {
    work();
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find(file), std::string::npos) << message;
  EXPECT_NE(message.find(phrase), std::string::npos)
      << "expected '" << phrase << "' in: " << message;
  int rank = 0, length = static_cast<int>(message.size());
  MPI_Comm_rank(comm, &rank);
  MPI_Bcast(&length, 1, MPI_INT, 0, comm);
  std::string root_message = message;
  root_message.resize(static_cast<size_t>(length));
  MPI_Bcast(root_message.data(), length, MPI_CHAR, 0, comm);
  EXPECT_EQ(message, root_message) << "rank " << rank << " disagrees with rank 0";
}

std::string temp_dir(const std::string& tag) {
  static int counter = 0;
  const std::string path = (std::filesystem::current_path() / "tmp" /
                            (tag + "_np" + std::to_string(world_size()) + "_" +
                             std::to_string(counter++)))
                               .string();
  if (world_rank() == 0) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return path;
}

void write_text_file(const std::string& path, const std::string& text) {
  if (world_rank() == 0) {
    std::ofstream out(path, std::ios::binary);
    out << text;
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

void derive_file(const std::string& source, const std::string& target,
                 const std::function<void(const std::string& target)>& edit) {
  on_root(MPI_COMM_WORLD, [&] {
    std::filesystem::copy_file(source, target, std::filesystem::copy_options::overwrite_existing);
    edit(target);
  });
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> file_names_in(const std::string& directory) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(directory))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

double relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    norm += b[i] * b[i];
  }
  if (a.size() != b.size()) return INFINITY;
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

std::vector<double> broadcast_from_root(std::vector<double> data) {
  long long n = static_cast<long long>(data.size());
  MPI_Bcast(&n, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
  data.resize(static_cast<size_t>(n));
  MPI_Bcast(data.data(), static_cast<int>(n), MPI_DOUBLE, 0, MPI_COMM_WORLD);
  return data;
}

}  // namespace cdmf::test
