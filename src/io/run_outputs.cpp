#include "cdmf/io/run_outputs.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "cdmf/core/error.hpp"

namespace cdmf {

namespace {
constexpr const char* kHeader =
    "iteration,seconds,train_loss,test_loss,train_rmse,test_rmse,recovery_error";

nlohmann::json number_or_null(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}
}  // namespace

std::string format_metric(double value) {
  return std::isnan(value) ? std::string() : fmt::format("{:.17g}", value);
}

MetricsCsv::MetricsCsv(const std::string& path, bool active, bool append,
                       const std::vector<std::string>& extra_columns) {
  if (!active || path.empty()) return;
  path_ = path;
  out_.open(path, append ? std::ios::app : std::ios::trunc);
  fail_if(!out_, "{}: cannot open for writing ({})", path, std::strerror(errno));
  if (append) return;
  out_ << kHeader;
  for (const std::string& name : extra_columns) out_ << ',' << name;
  out_ << '\n';
  flush_or_fail();
}

void MetricsCsv::flush_or_fail() {
  // Each row is flushed, so a full disk shows here, at the row it cut, not at the end.
  errno = 0;
  out_.flush();
  if (out_) return;
  const int code = errno;
  out_.close();  // no further rows: the file stops at the last complete one it holds
  fail("{}: write failed ({}): the metrics file is incomplete", path_,
       code != 0 ? std::strerror(code) : "stream error");
}

void MetricsCsv::write(const MetricsRow& row) {
  if (!out_.is_open()) return;
  out_ << row.iteration << ',' << fmt::format("{:.6f}", row.seconds) << ','
       << format_metric(row.train_loss) << ',' << format_metric(row.test_loss) << ','
       << format_metric(row.train_rmse) << ',' << format_metric(row.test_rmse) << ','
       << (row.recovery_error ? format_metric(*row.recovery_error) : std::string());
  for (double value : row.extra) out_ << ',' << format_metric(value);
  out_ << '\n';
  flush_or_fail();
}

std::string progress_line(const MetricsRow& row, const std::vector<std::string>& extra_columns) {
  std::string line = fmt::format("iter {:>8}  {:>9.2f} s  train {:.4e}", row.iteration, row.seconds,
                                 row.train_loss);
  if (!std::isnan(row.test_loss))
    line += fmt::format("  test {:.4e}  test-rmse {:.4e}", row.test_loss, row.test_rmse);
  if (row.recovery_error) line += fmt::format("  rel-err {:.4e}", *row.recovery_error);
  for (size_t e = 0; e < row.extra.size() && e < extra_columns.size(); ++e)
    line += fmt::format("  {} {:.4g}", extra_columns[e], row.extra[e]);
  return line;
}

void write_json_file(const std::string& path, const nlohmann::json& summary) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    fail_if(!out, "{}: cannot open for writing ({})", path, std::strerror(errno));
    out << summary.dump(2) << '\n';
    fail_if(!out.flush(), "{}: write failed ({})", path, std::strerror(errno));
  }
  fail_if(std::rename(temporary.c_str(), path.c_str()) != 0, "{}: cannot rename from {} ({})", path,
          temporary, std::strerror(errno));
}

nlohmann::json make_summary(const std::string& model, const TrainResult& result, int ranks,
                            const std::string& grid, const nlohmann::json& extra) {
  nlohmann::json summary = {
      {"model", model},
      {"iterations", result.iterations},
      {"seconds", result.seconds},
      {"stop_reason", result.stop_reason},
      {"train_loss", number_or_null(result.final.train_loss)},
      {"test_loss", number_or_null(result.final.test_loss)},
      {"train_rmse", number_or_null(result.final.train_rmse)},
      {"test_rmse", number_or_null(result.final.test_rmse)},
      {"ranks", ranks},
      {"grid", grid},
  };
  if (result.final.recovery_error) summary["recovery_error"] = *result.final.recovery_error;
  summary.update(extra);
  return summary;
}

}  // namespace cdmf
