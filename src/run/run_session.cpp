#include "cdmf/run/run_session.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <regex>

#include <fmt/core.h>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"
#include "cdmf/io/run_outputs.hpp"
#include "cdmf/train/stop_signals.hpp"

namespace cdmf::run {
namespace {

/// "12.3 MB" for the checkpoint line, or "size unknown".
std::string file_size_text(const std::string& path) {
  std::error_code code;
  const auto bytes = static_cast<double>(std::filesystem::file_size(path, code));
  return code ? std::string("size unknown") : byte_text(bytes);
}

}  // namespace

nlohmann::json RunOptions::to_json() const {
  return {{"iters", iters},
          {"tol", tol},
          {"log_every", log_every},
          {"patience", patience},
          {"metrics", metrics},
          {"summary", summary},
          {"output", output},
          {"grid", grid},
          {"checkpoint_dir", checkpoint_dir},
          {"checkpoint_every", checkpoint_every},
          {"checkpoint_every_seconds", checkpoint_every_seconds},
          {"keep_checkpoints", keep_checkpoints},
          {"restart", restart},
          {"max_walltime", max_walltime},
          {"memory_limit", memory_limit},
          {"config_file", config_file}};
}

double parse_walltime(const std::string& text) {
  if (text.empty()) return 0.0;
  static const std::regex format(R"((?:(\d+)-)?(\d+):([0-5]\d):([0-5]\d))");
  std::smatch match;
  fail_if(!std::regex_match(text, match, format),
          "--max-walltime '{}' is not HH:MM:SS (or D-HH:MM:SS)", text);
  const double days = match[1].matched ? std::stod(match[1].str()) : 0.0;
  const double seconds =
      ((days * 24.0 + std::stod(match[2].str())) * 60.0 + std::stod(match[3].str())) * 60.0 +
      std::stod(match[4].str());
  fail_if(seconds <= 0.0, "--max-walltime must be positive (got '{}')", text);
  return seconds;
}

void PhaseClock::enter(const std::string& name) {
  stop();
  current_ = name;
  since_ = MPI_Wtime();
}

void PhaseClock::stop() {
  if (current_.empty()) return;
  const double elapsed = MPI_Wtime() - since_;
  const auto found = std::find_if(seconds_.begin(), seconds_.end(),
                                  [&](const auto& phase) { return phase.first == current_; });
  if (found == seconds_.end())
    seconds_.emplace_back(current_, elapsed);
  else
    found->second += elapsed;
  current_.clear();
}

nlohmann::json PhaseClock::to_json() const {
  nlohmann::json phases = nlohmann::json::object();
  for (const auto& [name, seconds] : seconds_) phases[name] = seconds;
  return phases;
}

ProcessGrid RunSession::make_grid(const std::string& shape) {
  if (shape.empty()) return ProcessGrid(MPI_COMM_WORLD);
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return ProcessGrid(MPI_COMM_WORLD, parse_grid_shape(shape, size));
}

RunSession::RunSession(std::string command, const RunOptions& options, nlohmann::json config,
                       std::vector<OutputFile> outputs, std::vector<InputFile> inputs)
    : options_(options),
      config_(std::move(config)),
      // Wall time counts from the start of the run: start-up and the data load use some of it.
      started_(MPI_Wtime()),
      max_walltime_(parse_walltime(options.max_walltime)),
      grid_(make_grid(options.grid)),
      grid_text_(fmt::format("{}x{}", grid_.rows(), grid_.cols())) {
  const RunOptions& o = options_;
  fail_if(o.restart == "auto" && o.checkpoint_dir.empty(),
          "--restart auto needs --checkpoint-dir (the directory to look in)");
  fail_if(
      (o.checkpoint_every != 0 || o.checkpoint_every_seconds != 0.0) && o.checkpoint_dir.empty(),
      "--checkpoint-every and --checkpoint-every-seconds need --checkpoint-dir");
  budget_ = cdmf::memory_budget(
      grid_.comm(), o.memory_limit.empty() ? 0.0 : parse_byte_size(o.memory_limit,
                                                                    "--memory-limit"));
  if (is_root())
    fmt::print("cdmf {} {} on {} ranks (grid {})\nconfiguration: {}\n", CDMF_VERSION, command,
               grid_.size(), grid_text_, config_.dump());

  // The checkpoint directory and the output paths are checked before any work: a typo fails
  // at once, not after the run. The directory first, since it creates itself and outputs may
  // go into it.
  if (!o.checkpoint_dir.empty()) {
    checkpoints_.emplace(grid_.comm(), o.checkpoint_dir, o.keep_checkpoints);
    if (is_root())
      for (const std::string& path : checkpoints_->removed_temporaries())
        fmt::print("checkpoint: removed {}, the temporary of an interrupted write\n", path);
  }
  outputs.push_back({"--output", o.output});
  outputs.push_back({"--metrics", o.metrics});
  outputs.push_back({"--summary", o.summary});
  inputs.push_back({"--config", o.config_file});
  if (o.restart != "auto") inputs.push_back({"--restart", o.restart});
  if (checkpoints_)
    for (const std::string& path : list_checkpoints(grid_.comm(), o.checkpoint_dir))
      inputs.push_back({"--checkpoint-dir", path});
  check_output_files(grid_.comm(), outputs, inputs);
  if (checkpoints_) refuse_checkpoint_names(outputs);
}

void RunSession::refuse_checkpoint_names(const std::vector<OutputFile>& outputs) const {
  namespace fs = std::filesystem;
  run_agreed(grid_.comm(), [&] {
    if (!is_root()) return;
    const std::regex name(R"(checkpoint-\d+\.h5)");
    for (const OutputFile& output : outputs) {
      if (output.path.empty()) continue;
      const fs::path path(output.path);
      const std::string directory = path.has_parent_path() ? path.parent_path().string() : ".";
      fail_if(std::regex_match(path.filename().string(), name) &&
                  same_file(directory, options_.checkpoint_dir),
              "{} {}: a checkpoint's name in --checkpoint-dir {} (a checkpoint of the run would "
              "overwrite it, and --restart auto would take it for one)",
              output.option, output.path, options_.checkpoint_dir);
    }
  });
}

void RunSession::check_same_run(const CheckpointInfo& info,
                                const std::vector<std::string>& defining) const {
  const FactorFileInfo& f = info.factors;
  nlohmann::json stored;
  try {
    stored = nlohmann::json::parse(f.config_json);
  } catch (const nlohmann::json::exception&) {
    fail("{}: attribute 'config' is not valid JSON", f.path);
  }
  for (const std::string& key : defining) {
    if (!stored.contains(key)) continue;
    std::string flag = "--" + key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    fail_if(stored[key] != config_[key],
            "{}: the checkpoint was written with {} {} but this run has {} (a restart continues "
            "the same run: keep the options that define it)",
            f.path, flag, stored[key].dump(), config_[key].dump());
  }
}

TrainResult RunSession::train(Chain& chain, Strategy& strategy, Optimizer& optimizer,
                              TrainerState start, const Training& training) {
  phases_.enter("train");
  // Only rank 0 opens the metrics file: agree on its failure, or the other ranks would wait in
  // the training collectives forever. A restart rewrites it with the history so far, so the
  // file continues exactly as the uninterrupted run's would.
  std::optional<MetricsCsv> metrics_csv;
  run_agreed(grid_.comm(), [&] {
    metrics_csv.emplace(options_.metrics, is_root(), false, training.extra_columns);
    for (const MetricsRow& row : start.history) metrics_csv->write(row);
  });
  MetricsCsv& metrics = *metrics_csv;

  const double budget =
      max_walltime_ > 0.0 ? std::max(max_walltime_ - (MPI_Wtime() - started_), 1e-9) : 0.0;
  const RunOptions& o = options_;
  TrainerConfig trainer_config{o.iters,          o.tol,
                               o.log_every,      o.patience,
                               o.checkpoint_every, o.checkpoint_every_seconds,
                               budget};
  trainer_config.keep_best = training.keep_best;
  Trainer trainer(
      trainer_config,
      [&](const MetricsRow& row) {
        metrics.write(row);
        if (is_root() && !o.quiet) {
          fmt::print("{}\n", progress_line(row, training.extra_columns));
          std::fflush(stdout);
        }
      },
      [] { return StopSignals::received(); }, training.probe);
  trainer.set_validation(training.validation);

  if (checkpoints_) {
    const IndexLayout& layout = *training.layout;
    trainer.set_checkpoint_hook(
        [&](const Chain& c, const Optimizer& opt, const TrainerState& state) {
          const std::string path = checkpoints_->file_for(state.iteration);
          const double begin = MPI_Wtime();
          write_checkpoint(grid_, layout, path, c, opt, state, training.meta);
          const double seconds = MPI_Wtime() - begin;
          const std::vector<std::string> failures = checkpoints_->prune(grid_.comm());
          last_checkpoint_ = path;
          if (!is_root()) return;
          // Printed even with --quiet: rare, and what a job log needs to show.
          fmt::print("checkpoint: iteration {} -> {} ({} in {:.3f} s)\n", state.iteration, path,
                     file_size_text(path), seconds);
          for (const std::string& failure : failures)
            fmt::print(stderr, "cdmf: warning: {}\n", failure);
          std::fflush(stdout);
        });
  }

  const TrainResult result = trainer.run(chain, strategy, optimizer, std::move(start));
  phases_.stop();
  if (is_root()) {
    fmt::print("stopped ({}) after {} iterations in {:.2f} s: train loss {:.4e}\n",
               result.stop_reason, result.iterations, result.seconds, result.final.train_loss);
    if (result.interrupted()) {
      const std::string why = result.stop_reason == "signal"
                                  ? "received " + StopSignals::name(result.stop_signal)
                                  : "--max-walltime " + o.max_walltime + " reached";
      const std::string next =
          checkpoints_
              ? fmt::format("checkpoint {} written; continue with --restart auto", last_checkpoint_)
              : std::string("no --checkpoint-dir, so nothing to continue from");
      fmt::print("cdmf: interrupted at iteration {} ({}): {} (exit status {})\n", result.iterations,
                 why, next, kExitInterrupted);
    }
    std::fflush(stdout);
  }
  return result;
}

void RunSession::write_summary(const std::string& model, const TrainResult& result,
                               nlohmann::json extra) {
  phases_.stop();
  const PeakMemory peak = peak_memory(grid_.comm());
  if (options_.summary.empty()) return;
  extra["checkpoint"] =
      last_checkpoint_.empty() ? nlohmann::json(nullptr) : nlohmann::json(last_checkpoint_);
  extra["config"] = config_;
  extra["phase_seconds"] = phases_.to_json();
  extra["peak_memory_bytes"] = {{"max_rank", peak.max_rank}, {"total", peak.total}};
  if (result.stop_signal != 0) extra["stop_signal"] = StopSignals::name(result.stop_signal);
  run_agreed(grid_.comm(), [&] {  // written by rank 0; every rank exits non-zero if it fails
    if (is_root())
      write_json_file(options_.summary,
                      make_summary(model, result, grid_.size(), grid_text_, extra));
  });
}

}  // namespace cdmf::run
