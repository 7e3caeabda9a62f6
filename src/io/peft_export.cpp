#include "cdmf/io/peft_export.hpp"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"

namespace cdmf {

namespace {

/// Row-major float32 of a distributed matrix gathered to rank 0 in original order.
std::vector<float> gather_row_major(const DistMatrix& a, const IndexLayout& layout, Space rows,
                                    Space cols) {
  const std::vector<double> full = a.gather();
  std::vector<float> out;
  if (full.empty()) return out;
  out.resize(full.size());
  for (std::int64_t j = 0; j < a.cols(); ++j)
    for (std::int64_t i = 0; i < a.rows(); ++i)
      out[original_index(layout, rows, i) * a.cols() + original_index(layout, cols, j)] =
          static_cast<float>(full[i + j * a.rows()]);
  return out;
}

void write_file(const std::filesystem::path& path, const std::string& bytes) {
  // A temporary in the same directory, renamed when complete.
  const std::filesystem::path temporary = path.parent_path() / ("." + path.filename().string() + ".tmp");
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    fail_if(!out, "cannot write {}", temporary.string());
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    fail_if(!out, "cannot write {} (disk full?)", temporary.string());
  }
  std::error_code code;
  std::filesystem::rename(temporary, path, code);
  fail_if(bool(code), "cannot rename {} to {}: {}", temporary.string(), path.string(),
          code.message());
}

std::string safetensors(const std::vector<std::pair<std::string, std::pair<std::vector<std::int64_t>, const std::vector<float>*>>>& tensors) {
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "pt"}};
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    const std::uint64_t bytes = 4 * tensor.second->size();
    header[name] = {{"dtype", "F32"}, {"shape", tensor.first}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const std::uint64_t length = json.size();
  for (int b = 0; b < 8; ++b) out[b] = static_cast<char>((length >> (8 * b)) & 0xff);
  out += json;
  for (const auto& tensor : tensors) {
    const std::vector<float>& data = *tensor.second.second;
    for (float value : data) {  // little-endian bytes whatever the host
      std::uint32_t bits = 0;
      std::memcpy(&bits, &value, sizeof bits);
      for (int b = 0; b < 4; ++b) out.push_back(static_cast<char>((bits >> (8 * b)) & 0xff));
    }
  }
  return out;
}

}  // namespace

void export_peft(const IndexLayout& layout, const Chain& adapter, const std::string& directory,
                 const std::string& target_module) {
  fail_if(target_module.empty(), "--export-peft needs --target-module NAME (the module adapted)");
  fail_if(adapter.depth() < 2, "--export-peft: a chain of {} factor(s) is not a LoRA pair",
          adapter.depth());
  const DistMatrix& a = adapter.factors.front();
  DistMatrix b = adapter.factors.back();
  for (int l = adapter.depth() - 2; l >= 1; --l) {  // B = W_K ... W_2 (m x k), thin products
    const DistMatrix& w = adapter.factors[l];
    DistMatrix next(b.grid(), b.rows(), w.cols(), b.block());
    gemm('N', 'N', 1.0, b, w, 0.0, next);
    b = std::move(next);
  }
  const std::vector<float> a_data = gather_row_major(a, layout, Space::kInner, Space::kCols);
  const std::vector<float> b_data = gather_row_major(b, layout, Space::kRows, Space::kInner);
  const std::int64_t k = a.rows();
  run_agreed(a.grid().comm(), [&] {
    if (!a.grid().is_root()) return;
    std::error_code code;
    std::filesystem::create_directories(directory, code);
    fail_if(bool(code), "--export-peft {}: cannot create the directory ({})", directory,
            code.message());
    const std::string prefix = "base_model.model." + target_module;
    write_file(std::filesystem::path(directory) / "adapter_model.safetensors",
               safetensors({{prefix + ".lora_A.weight", {{k, a.cols()}, &a_data}},
                            {prefix + ".lora_B.weight", {{b.rows(), k}, &b_data}}}));
    const nlohmann::ordered_json config = {
        {"peft_type", "LORA"},
        {"task_type", nullptr},
        {"base_model_name_or_path", nullptr},
        {"revision", nullptr},
        {"inference_mode", true},
        {"r", k},
        {"lora_alpha", k},
        {"lora_dropout", 0.0},
        {"target_modules", {target_module}},
        {"bias", "none"},
        {"fan_in_fan_out", false},
        {"init_lora_weights", true},
        {"use_rslora", false},
        {"use_dora", false},
        {"modules_to_save", nullptr},
        {"layers_to_transform", nullptr},
        {"layers_pattern", nullptr},
        {"rank_pattern", nlohmann::json::object()},
        {"alpha_pattern", nlohmann::json::object()}};
    write_file(std::filesystem::path(directory) / "adapter_config.json", config.dump(2) + "\n");
  });
}

}  // namespace cdmf
