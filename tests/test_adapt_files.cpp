// Adaptation files (DESIGN.md sections 3 and 4): the adapter file round trip with its root
// attributes and base fingerprint; the PEFT export read back by a small safetensors reader
// written here (B A equals DeltaW to float32 rounding) and its adapter_config.json; samples
// and base files with their errors. On every grid shape that fits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cdmf/io/adapt_inputs.hpp"
#include "cdmf/io/adapter_file.hpp"
#include "cdmf/io/hdf5.hpp"
#include "cdmf/io/peft_export.hpp"
#include "cdmf/random/counter_rng.hpp"
#include "support/serial_reference.hpp"
#include "support/test_support.hpp"

namespace cdmf {
namespace {

using test::SerialMatrix;

/// One tensor of a safetensors file.
struct Tensor {
  std::vector<std::int64_t> shape;
  std::vector<float> data;  // row-major
};

/// Parses a safetensors file: 8-byte little-endian header length, the JSON header, the data.
std::map<std::string, Tensor> read_safetensors(const std::string& path, nlohmann::json& header) {
  const std::string bytes = test::file_bytes(path);
  EXPECT_GE(bytes.size(), 8u);
  std::uint64_t length = 0;
  for (int b = 0; b < 8; ++b) length |= std::uint64_t(static_cast<unsigned char>(bytes[b])) << (8 * b);
  EXPECT_EQ(length % 8, 0u) << "the header is padded to 8 bytes";
  header = nlohmann::json::parse(bytes.substr(8, length));
  std::map<std::string, Tensor> tensors;
  const size_t data_start = 8 + length;
  size_t covered = 0;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    EXPECT_EQ(entry["dtype"], "F32") << name;
    Tensor t;
    t.shape = entry["shape"].get<std::vector<std::int64_t>>();
    const auto offsets = entry["data_offsets"].get<std::vector<std::uint64_t>>();
    EXPECT_EQ(offsets[1] - offsets[0], 4 * size_t(t.shape[0] * t.shape[1])) << name;
    t.data.resize((offsets[1] - offsets[0]) / 4);
    std::memcpy(t.data.data(), bytes.data() + data_start + offsets[0], offsets[1] - offsets[0]);
    covered += offsets[1] - offsets[0];
    tensors[name] = std::move(t);
  }
  EXPECT_EQ(data_start + covered, bytes.size()) << "the data fill the rest of the file exactly";
  return tensors;
}

/// A deep-compressed-shaped chain with random factors (the export does not care how it came).
/// Collective: the integer root attribute `name` of an HDF5 file (-1 when absent).
std::int64_t root_int(MPI_Comm comm, const std::string& path, const char* name) {
  const h5::File file = h5::File::open(comm, path);
  return file.attributes().get_int(name).value_or(-1);
}

/// Collective: sets the integer root attribute `name` (rank 0 writes), as an older cdmf did.
void set_root_int(MPI_Comm comm, const std::string& path, const char* name, long long value) {
  test::on_root(comm, [&] {
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(file, 0);
    if (H5Aexists(file, name) > 0) H5Adelete(file, name);
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t attribute = H5Acreate2(file, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attribute, H5T_NATIVE_LLONG, &value);
    H5Aclose(attribute);
    H5Sclose(space);
    H5Fclose(file);
  });
}

Chain random_chain(const ProcessGrid& grid, const IndexLayout& layout, std::int64_t k, int depth) {
  Chain chain = make_deep_chain(grid, layout, depth, k, 1.0, 41, ModelKind::kCompressed);
  for (int l = 0; l < depth; ++l)
    for (double& x : chain.factors[l].local()) x *= 1.0 + 0.3 * l;
  return chain;
}

TEST(AdaptFiles, PeftExportReadsBackAsDeltaW) {
  const std::int64_t m = 13, n = 11, k = 4;
  const std::string base_dir = test::temp_dir("peft");  // collective over the world
  for (GridShape shape : test::available_shapes())
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      IndexLayout layout(m, n, choose_block_size(m, n, grid, 3), 5);
      for (int depth : {2, 5}) {
        const Chain chain = random_chain(grid, layout, k, depth);
        const std::string dir = base_dir + "/" + std::to_string(grid.rows()) + "x" +
                                std::to_string(grid.cols()) + "_depth" + std::to_string(depth);
        export_peft(layout, chain, dir, "encoder.layer.0.attention.self.query");
        const SerialMatrix delta = test::gather_original(end_to_end(chain), layout, Space::kRows, Space::kCols);
        if (!grid.is_root()) continue;
        nlohmann::json header;
        auto tensors = read_safetensors(dir + "/adapter_model.safetensors", header);
        const std::string prefix = "base_model.model.encoder.layer.0.attention.self.query";
        ASSERT_EQ(tensors.size(), 2u);
        const Tensor& a = tensors[prefix + ".lora_A.weight"];
        const Tensor& b = tensors[prefix + ".lora_B.weight"];
        EXPECT_EQ(a.shape, (std::vector<std::int64_t>{k, n}));
        EXPECT_EQ(b.shape, (std::vector<std::int64_t>{m, k}));
        double worst = 0.0, scale = 0.0;
        for (std::int64_t i = 0; i < m; ++i)
          for (std::int64_t j = 0; j < n; ++j) {
            double ba = 0.0;
            for (std::int64_t c = 0; c < k; ++c) ba += double(b.data[i * k + c]) * double(a.data[c * n + j]);
            worst = std::max(worst, std::abs(ba - delta(i, j)));
            scale = std::max(scale, std::abs(delta(i, j)));
          }
        EXPECT_LT(worst, 1e-6 * scale) << "B A = DeltaW to float32 rounding (depth " << depth << ")";
        std::ifstream config_file(dir + "/adapter_config.json");
        const nlohmann::json config = nlohmann::json::parse(config_file);
        EXPECT_EQ(config["peft_type"], "LORA");
        EXPECT_EQ(config["r"], k);
        EXPECT_EQ(config["lora_alpha"], k);
        EXPECT_EQ(config["target_modules"], nlohmann::json::array({"encoder.layer.0.attention.self.query"}));
        EXPECT_EQ(config["bias"], "none");
        EXPECT_EQ(config["fan_in_fan_out"], false);
        EXPECT_EQ(test::file_names_in(dir),
                  (std::vector<std::string>{"adapter_config.json", "adapter_model.safetensors"}));
      }
    });
}

TEST(AdaptFiles, AdapterFileRoundTripAndFingerprint) {
  const std::int64_t m = 13, n = 11;
  const std::string dir = test::temp_dir("adapter_file");
  // A dense base, written by rank 0 with the library's HDF5 wrapper on a self communicator.
  SerialMatrix w{m, n, {}};
  for (std::int64_t e = 0; e < m * n; ++e) w.data.push_back(gaussian(3, 1, e));
  test::on_root(MPI_COMM_WORLD, [&] {
    for (const char* name : {"base.h5", "other.h5"}) {
      h5::File file = h5::File::create(MPI_COMM_SELF, dir + "/" + name);
      {
        h5::Dataset d = file.create_dataset("/W", H5T_IEEE_F64LE, {m, n});
        std::vector<double> row_major(m * n);
        for (std::int64_t i = 0; i < m; ++i)
          for (std::int64_t j = 0; j < n; ++j)
            row_major[i * n + j] =
                w(i, j) + (std::string(name) == "other.h5" && i == 2 && j == 3 ? 1e-9 : 0.0);
        d.write_rows(H5T_NATIVE_DOUBLE, 0, m, row_major.data());
      }
      file.close();
    }
  });
  std::string first_fingerprint;
  for (GridShape shape : test::available_shapes())
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      IndexLayout layout(m, n, choose_block_size(m, n, grid, 3), 5);
      const BaseFileInfo info = read_base_info(grid.comm(), dir + "/base.h5");
      EXPECT_TRUE(info.dense);
      const Base base = read_base(grid, layout, info, layout.block());
      const std::string fingerprint = base_fingerprint(base, layout);
      if (first_fingerprint.empty()) first_fingerprint = fingerprint;
      EXPECT_EQ(fingerprint, first_fingerprint) << "the same on every grid";
      const Base other = read_base(grid, layout, read_base_info(grid.comm(), dir + "/other.h5"), layout.block());
      EXPECT_NE(base_fingerprint(other, layout), fingerprint);

      const Chain chain = random_chain(grid, layout, 4, 5);
      const AdapterConfig config{AdapterKind::kDeepCompressed, 4, 3, 1e-3, 0.1, 0.0, 0, 1};
      const std::string path = dir + "/adapter.h5";
      write_adapter_file(grid, layout, path, chain, {config, "linear", fingerprint, 12, "{}"});
      const AdapterFileInfo read = read_adapter_info(grid.comm(), path);
      EXPECT_EQ(read.factors.format, "cdmf-adapter");
      EXPECT_EQ(read.adapter, "deep-compressed");
      EXPECT_EQ(read.rank, 4);
      EXPECT_EQ(read.depth, 3);
      EXPECT_EQ(read.factors.depth, 5);
      EXPECT_EQ(read.measurement, "linear");
      EXPECT_DOUBLE_EQ(read.gamma, 0.1);
      EXPECT_DOUBLE_EQ(read.alpha, 4.0);
      EXPECT_EQ(read.base_fingerprint, fingerprint);
      const std::vector<DistMatrix> factors = read_factors(grid, layout, read.factors, layout.block());
      for (int l = 0; l < 5; ++l) EXPECT_EQ(factors[l].local(), chain.factors[l].local());
      check_adapter_base(read, "base.h5", fingerprint);
      test::expect_error(grid.comm(), path, "fitted to another base", [&] {
        check_adapter_base(read, "other.h5", base_fingerprint(other, layout));
      });
      test::expect_error(grid.comm(), path, "apply it with --base and --adapter",
                         [&] { read_factor_file_info(grid.comm(), path); });
      // DESIGN's `depth` is the factor file's (5 factors); L = 3 follows from it. A file of
      // the first version also holds adapter_depth: read when it agrees, refused when not.
      EXPECT_EQ(root_int(grid.comm(), path, "depth"), 5);
      EXPECT_EQ(root_int(grid.comm(), path, "adapter_depth"), -1) << "no longer written";
      set_root_int(grid.comm(), path, "adapter_depth", 3);
      EXPECT_EQ(read_adapter_info(grid.comm(), path).depth, 3);
      set_root_int(grid.comm(), path, "adapter_depth", 4);
      test::expect_error(grid.comm(), path, "adapter_depth = 4 disagrees with its 5 factors",
                         [&] { read_adapter_info(grid.comm(), path); });
      const std::string lora = dir + "/lora.h5";
      write_adapter_file(grid, layout, lora, random_chain(grid, layout, 4, 2),
                         {{AdapterKind::kLora, 4}, "entries", fingerprint, 1, "{}"});
      EXPECT_EQ(read_adapter_info(grid.comm(), lora).depth, 2);
    });
}

/// Writes a samples file (rank 0) with /inputs s x n and /targets s_t x m.
void write_samples(const std::string& path, std::int64_t s, std::int64_t n, std::int64_t s_t,
                   std::int64_t m, double poison = 0.0) {
  test::on_root(MPI_COMM_WORLD, [&] {
    h5::File file = h5::File::create(MPI_COMM_SELF, path);
    {
      h5::Dataset inputs = file.create_dataset("/inputs", H5T_IEEE_F64LE, {s, n});
      h5::Dataset targets = file.create_dataset("/targets", H5T_IEEE_F64LE, {s_t, m});
      std::vector<double> x(s * n), y(s_t * m);
      for (size_t e = 0; e < x.size(); ++e) x[e] = gaussian(9, 1, e);
      for (size_t e = 0; e < y.size(); ++e) y[e] = gaussian(9, 2, e);
      if (poison != 0.0) x[2 * n + 1] = poison;
      inputs.write_rows(H5T_NATIVE_DOUBLE, 0, s, x.data());
      targets.write_rows(H5T_NATIVE_DOUBLE, 0, s_t, y.data());
    }
    file.close();
  });
}

TEST(AdaptFiles, SamplesAreReadTransposedAndChecked) {
  const std::int64_t m = 9, n = 7, s = 5;
  const std::string dir = test::temp_dir("samples");
  write_samples(dir + "/good.h5", s, n, s, m);
  write_samples(dir + "/narrow.h5", s, n - 1, s, m);
  write_samples(dir + "/counts.h5", s, n, s + 1, m);
  write_samples(dir + "/nan.h5", s, n, s, m, std::nan(""));
  write_samples(dir + "/inf.h5", s, n, s, m, INFINITY);
  test::on_world_grid([&](const ProcessGrid& grid) {
    IndexLayout layout(m, n, choose_block_size(m, n, grid, 2), 5);
    const Samples samples = read_samples(grid, layout, dir + "/good.h5");
    const SerialMatrix x = test::gather_original(samples.inputs, layout, Space::kCols, Space::kInner);
    if (grid.is_root())
      for (std::int64_t t = 0; t < s; ++t)
        for (std::int64_t j = 0; j < n; ++j) EXPECT_EQ(x(j, t), gaussian(9, 1, t * n + j));
    EXPECT_EQ(samples.fingerprint.entries, s);
    test::expect_error(grid.comm(), "narrow.h5", "/inputs has 6 columns (features) but the base has 7",
                       [&] { read_samples(grid, layout, dir + "/narrow.h5"); });
    test::expect_error(grid.comm(), "counts.h5", "/inputs holds 5 samples but /targets holds 6",
                       [&] { read_samples(grid, layout, dir + "/counts.h5"); });
    test::expect_error(grid.comm(), "nan.h5", "non-finite value (NaN or Inf) at sample 2, column 1",
                       [&] { read_samples(grid, layout, dir + "/nan.h5"); });
    test::expect_error(grid.comm(), "inf.h5", "non-finite",
                       [&] { read_samples(grid, layout, dir + "/inf.h5"); });
  });
}

}  // namespace
}  // namespace cdmf
