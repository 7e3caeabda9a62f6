#pragma once
// The options every training command shares (run::RunOptions: stopping, logging, outputs,
// checkpoints, restart, wall time, memory), registered once for `train` and `adapt`.
#include <CLI/CLI.hpp>

#include "cdmf/run/run_session.hpp"

namespace cdmf::cli {

/// Registers --iters, --tol, --patience, --output (described by `output_help`), --metrics,
/// --summary, --log-every, --grid, the checkpoint and restart options, --max-walltime,
/// --memory-limit and --quiet on `sub`.
void add_run_options(CLI::App& sub, run::RunOptions& o, const std::string& output_help);

}  // namespace cdmf::cli
