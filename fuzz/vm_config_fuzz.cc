// The config-file parser (Firecracker's full VM configuration JSON) on hostile text; what it
// accepts must pass the same validation the API applies, and what GET /vm/config exports from
// it must parse back to the same configuration.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/resource_json.h"
#include "config/vm_resources.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto resources =
      hearth::ParseVmConfig(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!resources.ok()) return 0;
  if (!hearth::ValidateMachineConfig(resources->machine).ok()) {
    std::fprintf(stderr, "ParseVmConfig accepted an invalid machine-config\n");
    std::abort();
  }
  if (resources->vsock && !hearth::ValidateVsockConfig(*resources->vsock).ok()) {
    std::fprintf(stderr, "ParseVmConfig accepted an invalid vsock\n");
    std::abort();
  }
  for (const auto& drive : resources->drives) {
    if (!hearth::ValidateResourceId(drive.drive_id, "drive_id").ok()) {
      std::fprintf(stderr, "ParseVmConfig accepted an invalid drive_id\n");
      std::abort();
    }
  }
  const std::string exported = hearth::VmResourcesToJson(*resources).dump();
  auto again = hearth::ParseVmConfig(exported);
  if (!again.ok()) {
    std::fprintf(stderr, "exported config does not parse back: %s\n%s\n",
                 again.error().message().c_str(), exported.c_str());
    std::abort();
  }
  if (hearth::VmResourcesToJson(*again).dump() != exported) {
    std::fprintf(stderr, "exported config changes on a round trip:\n%s\n", exported.c_str());
    std::abort();
  }
  return 0;
}
