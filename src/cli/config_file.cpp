#include "config_file.hpp"

#include <filesystem>
#include <vector>

#include "cdmf/core/error.hpp"

namespace cdmf::cli {

void apply_config_file(CLI::App& sub, const std::string& path) {
  if (path.empty()) return;
  fail_if(!std::filesystem::is_regular_file(path), "{}: cannot open config file", path);
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_file(path);
  } catch (const CLI::Error& e) {
    fail("{}: cannot read config file ({})", path, e.what());
  }
  for (const CLI::ConfigItem& item : items) {
    if (item.name == "++" || item.name == "--") continue;  // section markers
    fail_if(
        !(item.parents.empty() || (item.parents.size() == 1 && item.parents[0] == sub.get_name())),
        "{}: unknown option '{}' (not a '{}' option)", path, item.fullname(), sub.get_name());
    CLI::Option* option = sub.get_option_no_throw("--" + item.name);
    fail_if(option == nullptr || item.name == "config" || item.name == "help",
            "{}: unknown option '{}'", path, item.fullname());
    if (option->count() > 0) continue;  // given on the command line
    try {
      if (option->get_expected_min() == 0)
        option->add_result(option->get_flag_value(item.name, CLI::ConfigTOML().to_flag(item)));
      else
        option->add_result(item.inputs);
      option->run_callback();
    } catch (const CLI::Error& e) {
      fail("{}: option '{}': {}", path, item.fullname(), e.what());
    }
  }
}


}  // namespace cdmf::cli
