#pragma once
/// Human- and script-facing outputs of a run, written by rank 0 only: the metrics CSV (one
/// row per logged iteration) and the JSON summary (DESIGN.md section 4).
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cdmf/train/trainer.hpp"

namespace cdmf {

/// Metrics CSV: iteration,seconds,train_loss,test_loss,train_rmse,test_rmse,recovery_error
/// (+ `extra_columns`, filled from MetricsRow::extra); unknown values are empty fields. Rows
/// are flushed as written so a killed run keeps its history. Opens only on `active` (rank 0).
/// A failed write (a full disk) throws Error naming the file; the caller agrees on it across
/// ranks (the trainer does for its row sink).
class MetricsCsv {
 public:
  MetricsCsv(const std::string& path, bool active, bool append = false,
             const std::vector<std::string>& extra_columns = {});
  void write(const MetricsRow& row);
  bool is_open() const { return out_.is_open(); }

 private:
  void flush_or_fail();

  std::string path_;
  std::ofstream out_;
};

/// Formats a metrics value: 17 significant digits, empty for NaN.
std::string format_metric(double value);

/// The progress line printed by rank 0 at each log step (extra values after their names).
std::string progress_line(const MetricsRow& row, const std::vector<std::string>& extra_columns = {});

/// Writes `summary` (pretty JSON) to `path` atomically (temporary file + rename); rank 0 only.
/// Throws Error when the file cannot be written.
void write_json_file(const std::string& path, const nlohmann::json& summary);

/// The summary object: model, iterations, seconds, train_loss, test_loss, test_rmse,
/// recovery_error (when known), ranks, grid, stop_reason, plus `extra` merged in.
nlohmann::json make_summary(const std::string& model, const TrainResult& result, int ranks,
                            const std::string& grid, const nlohmann::json& extra);

}  // namespace cdmf
