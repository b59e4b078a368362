// The typed actions the API thread hands to the VMM thread, one per endpoint of Firecracker's
// API that Hearth serves, and the reply that comes back. Parsing (request_parser.h) produces
// them from raw HTTP; the VMM's controller executes them.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "config/vm_resources.h"

namespace hearth {

struct GetInstanceInfo {};
struct GetVersion {};
struct GetMachineConfig {};
struct GetVmConfig {};

struct PutBootSource {
  BootSourceConfig config;
};
struct PutMachineConfig {
  MachineConfig config;
};
// PATCH /machine-config: only the fields given change.
struct PatchMachineConfig {
  std::optional<uint32_t> vcpu_count;
  std::optional<uint64_t> mem_size_mib;
  std::optional<bool> smt;
  std::optional<bool> track_dirty_pages;
};
struct PutDrive {
  DriveConfig config;
};
struct PatchDrive {
  std::string drive_id;
  std::optional<std::string> path_on_host;
  std::optional<RateLimiterConfig> rate_limiter;
};
struct PutNetworkInterface {
  NetworkInterfaceConfig config;
};
struct PatchNetworkInterface {
  std::string iface_id;
  std::optional<RateLimiterConfig> rx_rate_limiter;
  std::optional<RateLimiterConfig> tx_rate_limiter;
};
struct PutVsock {
  VsockConfig config;
};
struct PutLogger {
  LoggerConfig config;
};
struct PutMetrics {
  MetricsConfig config;
};

enum class InstanceActionType { kInstanceStart, kSendCtrlAltDel, kFlushMetrics };
struct PutAction {
  InstanceActionType type;
};

struct PatchVmState {
  bool paused;
};

enum class SnapshotType { kFull, kDiff };
struct CreateSnapshot {
  SnapshotType type = SnapshotType::kFull;
  std::string snapshot_path;
  std::string mem_file_path;
};

enum class MemBackendType { kFile, kUffd };
struct NetworkOverride {
  std::string iface_id;
  std::string host_dev_name;
};
struct LoadSnapshot {
  std::string snapshot_path;
  MemBackendType backend_type = MemBackendType::kFile;
  std::string backend_path;
  bool track_dirty_pages = false;
  bool resume_vm = false;
  bool clock_realtime = false;
  std::vector<NetworkOverride> network_overrides;
  std::optional<std::string> vsock_uds_path;
};

using ApiAction =
    std::variant<GetInstanceInfo, GetVersion, GetMachineConfig, GetVmConfig, PutBootSource,
                 PutMachineConfig, PatchMachineConfig, PutDrive, PatchDrive, PutNetworkInterface,
                 PatchNetworkInterface, PutVsock, PutLogger, PutMetrics, PutAction, PatchVmState,
                 CreateSnapshot, LoadSnapshot>;

// What the API sends back: 200 with a JSON body, 204 with none, or 400 with
// {"fault_message": ...}.
struct ApiResponse {
  int status = 204;
  std::string body;

  static ApiResponse NoContent() { return {204, ""}; }
  static ApiResponse Json(std::string body) { return {200, std::move(body)}; }
  static ApiResponse Fault(std::string_view message, int status = 400);
};

// A short name of the action for logs and metrics ("put_drive", "patch_vm", ...).
const char* ActionName(const ApiAction& action);

}  // namespace hearth
