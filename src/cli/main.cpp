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
#include <string>
#include <vector>

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

/// Edits (insertions, deletions, substitutions, swaps of neighbours) that turn `a` into `b`
/// (optimal string alignment distance: "trian" is one swap from "train").
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

/// "unknown subcommand 'trian' (did you mean 'train'?)" when the first argument is a word that
/// names no subcommand, or "" (CLI11 itself only says "A subcommand is required").
std::string unknown_subcommand(int argc, char** argv, const std::vector<Command>& commands) {
  if (argc < 2 || argv[1][0] == '-') return "";
  const std::string given = argv[1];
  std::string nearest;
  size_t best = given.size();
  for (const Command& command : commands) {
    const std::string& name = command.app->get_name();
    if (name == given) return "";
    const size_t distance = edit_distance(given, name);
    if (distance < best) {
      best = distance;
      nearest = name;
    }
  }
  std::string message = "unknown subcommand '" + given + "'";
  // Only a near miss is a suggestion: at most a third of the letters wrong.
  if (!nearest.empty() && 3 * best <= std::max(given.size(), nearest.size()))
    message += " (did you mean '" + nearest + "'?)";
  else {
    message += " (the subcommands are";
    for (const Command& command : commands) message += " " + command.app->get_name();
    message += ")";
  }
  return message;
}

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
  const std::string unknown = cdmf::cli::unknown_subcommand(argc, argv, commands);
  if (!unknown.empty()) {
    if (cdmf::cli::is_root()) std::fprintf(stderr, "cdmf: error: %s\n", unknown.c_str());
    return 1;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Help and version exit 0; real parse errors print one "cdmf: error:" line on rank 0 and
    // exit 1 everywhere, as every other error does (not CLI11's own codes 104-114, which a job
    // script would not recognise as a failure of the command line).
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success))
      return cdmf::cli::is_root() ? app.exit(e) : 0;
    if (cdmf::cli::is_root())
      std::fprintf(stderr, "cdmf: error: %s (see --help)\n", cdmf::Error(e.what()).what());
    return 1;
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
