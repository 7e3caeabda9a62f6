#include "cdmf/core/agree.hpp"
#include "cdmf/io/factor_file.hpp"
#include "cdmf/io/hdf5.hpp"

namespace cdmf {

FactorShape truth_dimensions(MPI_Comm comm, const std::string& path) {
  const h5::File file = h5::File::open(comm, path);
  FactorShape shape{0, 0};
  run_agreed(comm, [&] {
    if (file.has("/matrix")) {
      const h5::Dataset matrix = file.open_dataset("/matrix");
      matrix.require(2, h5::Elements::kNumber);
      shape = {matrix.dims()[0], matrix.dims()[1]};
      return;
    }
    fail_if(!file.has("/U") || !file.has("/V"),
            "{}: not a truth file (expected datasets /U and /V, or /matrix)", path);
    const h5::Dataset u = file.open_dataset("/U");
    const h5::Dataset v = file.open_dataset("/V");
    u.require(2, h5::Elements::kNumber);
    v.require(2, h5::Elements::kNumber);
    shape = {u.dims()[0], v.dims()[0]};
  });
  return shape;
}

}  // namespace cdmf
