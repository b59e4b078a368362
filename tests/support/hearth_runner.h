// Runs `hearth --no-api --config-file <dir>/vm.json [extra args]` on a config
// built with VmConfigJson.

#ifndef HEARTH_TESTS_SUPPORT_HEARTH_RUNNER_H_
#define HEARTH_TESTS_SUPPORT_HEARTH_RUNNER_H_

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/vm_config.h"

namespace hearth::testing {

// The per-run limit the integration tests use: generous, since a hang is a
// failure anyway and the host may be slow.
inline constexpr std::chrono::seconds kHearthRunTimeout{60};

// Writes `config_json` to `dir`/vm.json and runs HearthBinary() on it, with
// `prefix` (e.g. {"setpriv", "--reuid=65534"}) before the binary and
// `extra_args` after the standard ones.
ProcessResult RunHearthWithConfig(
    const TempDir& dir, std::string_view config_json,
    const std::vector<std::string>& extra_args = {},
    std::string_view stdin_data = {},
    const std::vector<std::string>& prefix = {},
    std::chrono::milliseconds timeout = kHearthRunTimeout);

inline ProcessResult RunHearth(const TempDir& dir, const VmConfigJson& config,
                               const std::vector<std::string>& extra_args = {},
                               std::string_view stdin_data = {}) {
  return RunHearthWithConfig(dir, config.Str(), extra_args, stdin_data);
}

}  // namespace hearth::testing

#endif  // HEARTH_TESTS_SUPPORT_HEARTH_RUNNER_H_
