// cdmf: deep overparameterized low-rank matrix completion and its compressed form.
// Every rank parses the same arguments; failures are agreed across ranks (the library throws
// the same cdmf::Error everywhere), rank 0 prints one line, and every rank exits non-zero.
#include <CLI/CLI.hpp>
#include <mpi.h>

#include <cstdio>
#include <exception>

#include "cdmf/core/error.hpp"
#include "cdmf/grid/process_grid.hpp"
#include "commands.hpp"

namespace cdmf::cli {
bool is_root() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank == 0;
}
}  // namespace cdmf::cli

int main(int argc, char** argv) {
  cdmf::Environment environment(&argc, &argv);
  CLI::App app{"cdmf: distributed deep matrix completion with compressible dynamics "
               "(Yaras, Wang, Balzano & Qu, ICML 2024)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("cdmf ") + CDMF_VERSION);
  const std::vector<cdmf::cli::Command> commands = {
      cdmf::cli::add_generate_command(app), cdmf::cli::add_train_command(app),
      cdmf::cli::add_predict_command(app), cdmf::cli::add_inspect_command(app)};
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
  try {
    for (const auto& command : commands)
      if (command.app->parsed()) command.run();
  } catch (const std::exception& e) {
    if (cdmf::cli::is_root()) std::fprintf(stderr, "cdmf: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
