#include "cdmf/io/adapter_file.hpp"

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"
#include "cdmf/io/hdf5.hpp"

namespace cdmf {

void write_adapter_file(const ProcessGrid& grid, const IndexLayout& layout, const std::string& path,
                        const Chain& adapter, const AdapterMeta& meta, const IdMap& row_ids,
                        const IdMap& col_ids) {
  const AdapterConfig& c = meta.config;
  FactorFileMeta file_meta{meta.iteration, meta.config_json};
  file_meta.format = kAdapterFormat;
  file_meta.string_attributes = {{"adapter", adapter_name(c.kind)},
                                 {"measurement", meta.measurement},
                                 {"base_fingerprint", meta.base_fingerprint}};
  // The adapter's depth L is not stored apart: the root attribute `depth` is the factor
  // count every factor file has (its reader counts /factors by it), and L follows from it
  // (adapter_depth below).
  file_meta.int_attributes = {{"rank", c.rank}};
  file_meta.double_attributes = {{"init_scale", c.init_scale},
                                 {"gamma", c.gamma},
                                 {"alpha", c.alpha > 0.0 ? c.alpha : static_cast<double>(c.rank)}};
  write_factor_file(grid, layout, path, adapter, file_meta, row_ids, col_ids);
}

std::int64_t adapter_depth(AdapterKind kind, std::int64_t factor_count) {
  // lora: B A; deep: W_L ... W_1; deep-compressed: U, L inner factors, V^T.
  return kind == AdapterKind::kDeepCompressed ? factor_count - 2 : factor_count;
}

AdapterFileInfo read_adapter_info(MPI_Comm comm, const std::string& path) {
  AdapterFileInfo info;
  info.factors = read_factor_file_info(comm, path, true);
  const h5::File file = h5::File::open(comm, path);
  run_agreed(comm, [&] {
    fail_if(info.factors.format != kAdapterFormat,
            "{}: not a cdmf adapter (format is '{}', expected '{}')", path, info.factors.format,
            kAdapterFormat);
    const h5::Attributes root = file.attributes();
    const auto text = [&](const char* name) {
      const auto value = root.get_string(name);
      fail_if(!value, "{}: attribute '{}' is missing", path, name);
      return *value;
    };
    const auto number = [&](const char* name) {
      const auto value = root.get_double(name);
      fail_if(!value, "{}: attribute '{}' is missing", path, name);
      return *value;
    };
    const auto integer = [&](const char* name) {
      const auto value = root.get_int(name);
      fail_if(!value, "{}: attribute '{}' is missing", path, name);
      return *value;
    };
    info.adapter = text("adapter");
    try {
      parse_adapter_kind(info.adapter);
    } catch (const Error& e) {
      fail("{}: {}", path, e.what());
    }
    info.measurement = text("measurement");
    info.base_fingerprint = text("base_fingerprint");
    info.rank = integer("rank");
    info.depth = adapter_depth(parse_adapter_kind(info.adapter), info.factors.depth);
    fail_if(info.depth < 1, "{}: a {} adapter of {} factors (it needs at least 3)", path,
            info.adapter, info.factors.depth);
    // Files written before the attribute was dropped hold it: accepted when it agrees.
    if (const auto old = root.get_int("adapter_depth"))
      fail_if(*old != info.depth,
              "{}: attribute adapter_depth = {} disagrees with its {} factors (a {} adapter of "
              "depth {})",
              path, *old, info.factors.depth, info.adapter, info.depth);
    info.init_scale = number("init_scale");
    info.gamma = number("gamma");
    info.alpha = number("alpha");
  });
  return info;
}

bool is_adapter_file(MPI_Comm comm, const std::string& path) {
  try {
    const h5::File file = h5::File::open(comm, path);
    int adapter = 0;
    run_agreed(comm, [&] { adapter = file.attributes().get_string("format") == std::string(kAdapterFormat); });
    return adapter != 0;
  } catch (const Error&) {
    return false;
  }
}

void check_adapter_base(const AdapterFileInfo& info, const std::string& base_path,
                        const std::string& base_fingerprint) {
  fail_if(info.base_fingerprint != base_fingerprint,
          "{}: the adapter was fitted to another base (base fingerprint {}) than {} (fingerprint "
          "{})",
          info.factors.path, info.base_fingerprint, base_path, base_fingerprint);
}

}  // namespace cdmf
