#pragma once
// Config files for subcommands (`--config run.toml`): options not given on the command line.
#include <CLI/CLI.hpp>

#include <string>

namespace cdmf::cli {

/// Applies a TOML/INI config file to the options of `sub` that were not given on the command
/// line (flags override the file). CLI11 2.1 only reads a config file declared on the top-level
/// app, so a subcommand's --config is handled here. Keys are option names without the leading
/// dashes, at the top level or in a [SUBCOMMAND] section; an unknown key is an error.
void apply_config_file(CLI::App& sub, const std::string& path);

}  // namespace cdmf::cli
