#include "tests/support/hearth_runner.h"

namespace hearth::testing {

ProcessResult RunHearthWithConfig(const TempDir& dir,
                                  std::string_view config_json,
                                  const std::vector<std::string>& extra_args,
                                  std::string_view stdin_data,
                                  const std::vector<std::string>& prefix,
                                  std::chrono::milliseconds timeout) {
  std::string config = dir.Write("vm.json", config_json);
  std::vector<std::string> argv = prefix;
  argv.push_back(HearthBinary());
  argv.insert(argv.end(), {"--no-api", "--config-file", config});
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  return RunProcess(argv, timeout, stdin_data);
}

}  // namespace hearth::testing
