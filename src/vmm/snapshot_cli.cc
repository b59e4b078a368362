#include "vmm/snapshot_cli.h"

#include "memory/memory_file.h"
#include "snapshot/state_file.h"
#include "vmm/snapshot_state.h"

namespace hearth {

int PrintSnapshotVersion(std::ostream& out) {
  out << SnapshotFormatVersionString() << "\n";
  return 0;
}

int DescribeSnapshot(const std::string& path, std::ostream& out, std::ostream& err) {
  auto payload = ReadStateFile(path);
  if (!payload.ok()) {
    err << "hearth: " << payload.error().message() << "\n";
    return 1;
  }
  auto state = DecodeMicroVmState(*payload);
  if (!state.ok()) {
    err << "hearth: " << path << ": " << state.error().message() << "\n";
    return 1;
  }
  out << path << ": Hearth snapshot, format version " << SnapshotFormatVersionString() << ", "
      << payload->size() << " bytes of state\n"
      << DescribeMicroVmState(*state);
  return 0;
}

int MergeDiffSnapshot(const std::string& diff, const std::string& base, std::ostream& err) {
  if (auto s = MergeDiffMemoryFile(diff, base); !s.ok()) {
    err << "hearth: " << s.error().message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace hearth
