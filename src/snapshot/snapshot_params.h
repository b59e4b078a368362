// The parameters of Firecracker's PUT /snapshot/create and PUT /snapshot/load, as plain
// structs: the API parses its bodies into these and the VMM acts on them.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace hearth {

enum class SnapshotType { kFull, kDiff };

struct SnapshotCreateParams {
  SnapshotType snapshot_type = SnapshotType::kFull;
  std::string snapshot_path;  // The state file.
  std::string mem_file_path;  // The memory file.
};

enum class MemBackendType { kFile, kUffd };

struct NetworkOverride {
  std::string iface_id;
  std::string host_dev_name;
};

struct SnapshotLoadParams {
  std::string snapshot_path;
  MemBackendType mem_backend_type = MemBackendType::kFile;
  std::string mem_backend_path;  // The memory file (File) or the handler's UNIX socket (Uffd).
  bool track_dirty_pages = false;
  bool resume_vm = false;
  std::vector<NetworkOverride> network_overrides;
  std::optional<std::string> vsock_uds_path;  // vsock_override.uds_path
};

}  // namespace hearth
