#pragma once
// The cdmf subcommands (DESIGN.md section 4). Each registers its options on a CLI11
// subcommand and returns the action to run once parsing succeeded.
#include <CLI/CLI.hpp>

#include <functional>

namespace cdmf::cli {

/// A registered subcommand and what to run when it is chosen (returns the exit status).
struct Command {
  CLI::App* app;
  std::function<int()> run;
};

Command add_generate_command(CLI::App& app);
Command add_train_command(CLI::App& app);
Command add_predict_command(CLI::App& app);
Command add_inspect_command(CLI::App& app);
Command add_adapt_command(CLI::App& app);

/// True on world rank 0 (rank 0 speaks).
bool is_root();

}  // namespace cdmf::cli
