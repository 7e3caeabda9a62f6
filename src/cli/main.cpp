// cdmf: deep overparameterized low-rank matrix completion and its compressed form.
// Every rank parses the same arguments; failures are agreed across ranks (the library throws
// the same cdmf::Error everywhere), rank 0 prints one line, and every rank exits non-zero.
#include <CLI/CLI.hpp>
#include <malloc.h>
#include <mpi.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <exception>
#include <optional>

#include "cdmf/core/error.hpp"
#include "cdmf/grid/process_grid.hpp"
#include "cdmf/train/stop_signals.hpp"
#include "commands.hpp"

namespace cdmf::cli {
namespace {
/// Large freed blocks stay in the heap for later allocations. By default glibc maps a block
/// above its threshold (128 kB, raised to the largest block freed so far) afresh and unmaps it
/// when freed, so each phase faults its buffers' pages in anew: the start-up of a 1000 x 1000
/// run on 2 ranks faulted 25,000 pages per rank instead of 13,600, at ~12 us a page on the VMs
/// this was tuned on. Blocks of 32 MB and more (glibc's largest threshold) are still mapped;
/// free memory above 1 GB goes back.
void keep_freed_memory() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}
}  // namespace

bool is_root() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank == 0;
}
}  // namespace cdmf::cli

int main(int argc, char** argv) {
  // Before MPI_Init: a stop signal during start-up must be remembered by `cdmf train` (which
  // then checkpoints at its first iteration boundary), not kill the rank.
  std::optional<cdmf::StopSignals> stop_signals(std::in_place);
  cdmf::cli::keep_freed_memory();
  cdmf::Environment environment(&argc, &argv);
  CLI::App app{"cdmf: distributed deep matrix completion with compressible dynamics "
               "(Yaras, Wang, Balzano & Qu, ICML 2024)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("cdmf ") + CDMF_VERSION);
  const std::vector<cdmf::cli::Command> commands = {
      cdmf::cli::add_generate_command(app), cdmf::cli::add_train_command(app),
      cdmf::cli::add_predict_command(app), cdmf::cli::add_inspect_command(app),
      cdmf::cli::add_adapt_command(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Help and version exit 0; real parse errors print one "cdmf: error:" line on rank 0 and
    // exit non-zero everywhere.
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success))
      return cdmf::cli::is_root() ? app.exit(e) : 0;
    if (cdmf::cli::is_root())
      std::fprintf(stderr, "cdmf: error: %s (see --help)\n", e.what());
    return e.get_exit_code();
  }
  // Only `train` and `adapt` poll the stop signals: the other commands get the default dispositions
  // back, and a signal that already came takes effect now.
  if (!std::any_of(commands.begin(), commands.end(), [](const cdmf::cli::Command& command) {
        return command.app->parsed() &&
               (command.app->get_name() == "train" || command.app->get_name() == "adapt");
      })) {
    const int pending = cdmf::StopSignals::received();
    stop_signals.reset();
    if (pending != 0) std::raise(pending);
  }
  int status = 0;
  try {
    for (const auto& command : commands)
      if (command.app->parsed()) status = command.run();
  } catch (const std::exception& e) {
    if (cdmf::cli::is_root()) std::fprintf(stderr, "cdmf: error: %s\n", e.what());
    return 1;
  }
  return status;
}
