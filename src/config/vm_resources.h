// The VM's configuration as plain structs, one per Firecracker API resource, gathered into
// VmResources. Filled from a config file (Firecracker's shape) now and by the API later; every
// value is validated here, with errors that name the field.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hearth {

struct BootSourceConfig {
  std::string kernel_image_path;
  std::optional<std::string> boot_args;
  std::optional<std::string> initrd_path;
};

struct MachineConfig {
  static constexpr uint32_t kMaxVcpus = 32;
  // Guest RAM above this is refused before any mapping is tried (16 TiB).
  static constexpr uint64_t kMaxMemMib = uint64_t{1} << 24;

  uint32_t vcpu_count = 1;
  uint64_t mem_size_mib = 128;
  bool smt = false;
  bool track_dirty_pages = false;
};

struct LoggerConfig {
  std::optional<std::string> log_path;
  std::optional<std::string> level;
  bool show_level = false;
  bool show_log_origin = false;
};

// One token bucket of a rate limiter (Firecracker's TokenBucket): `size` tokens (bytes or
// operations) refilled over `refill_time_ms`, plus a one-time initial burst. A bucket with size 0
// or refill_time_ms 0 does not limit.
struct TokenBucketConfig {
  uint64_t size = 0;
  uint64_t one_time_burst = 0;
  uint64_t refill_time_ms = 0;
  bool operator==(const TokenBucketConfig&) const = default;
};

// Firecracker's RateLimiter: a bandwidth bucket (bytes) and an ops bucket (requests/frames).
struct RateLimiterConfig {
  std::optional<TokenBucketConfig> bandwidth;
  std::optional<TokenBucketConfig> ops;
  bool operator==(const RateLimiterConfig&) const = default;
};

enum class CacheType { kUnsafe, kWriteback };
enum class IoEngine { kSync, kAsync };

struct DriveConfig {
  std::string drive_id;
  std::string path_on_host;
  bool is_root_device = false;
  bool is_read_only = false;
  std::optional<std::string> partuuid;
  CacheType cache_type = CacheType::kUnsafe;
  IoEngine io_engine = IoEngine::kSync;
  std::optional<RateLimiterConfig> rate_limiter;
};

struct NetworkInterfaceConfig {
  std::string iface_id;
  std::string host_dev_name;
  std::optional<std::array<uint8_t, 6>> guest_mac;
  std::optional<uint16_t> mtu;
  std::optional<RateLimiterConfig> rx_rate_limiter;
  std::optional<RateLimiterConfig> tx_rate_limiter;
};

// virtio-vsock with Firecracker's host side: host-initiated connections arrive on `uds_path`
// (`CONNECT <port>\n`), guest-initiated ones go to `<uds_path>_<port>`.
struct VsockConfig {
  static constexpr uint32_t kMinGuestCid = 3;
  uint32_t guest_cid = 0;
  std::string uds_path;
  std::optional<std::string> vsock_id;  // Deprecated in Firecracker; accepted and kept.
};

struct MetricsConfig {
  std::string metrics_path;
};

struct VmResources {
  std::optional<BootSourceConfig> boot_source;
  MachineConfig machine;
  std::optional<LoggerConfig> logger;
  std::vector<DriveConfig> drives;  // The root device, if any, first.
  std::vector<NetworkInterfaceConfig> network_interfaces;
  std::optional<VsockConfig> vsock;
  std::optional<MetricsConfig> metrics;
};

// Resource ids (drive_id, iface_id): 1 to 64 characters of [A-Za-z0-9_], as Firecracker's.
Status ValidateResourceId(std::string_view id, const std::string& field);
Result<std::array<uint8_t, 6>> ParseMac(std::string_view text);
// Checks one drive against the ones already configured (unique id, one root device) and
// inserts or replaces it, keeping the root device first.
Status InsertDrive(std::vector<DriveConfig>& drives, DriveConfig drive);
Status InsertNetworkInterface(std::vector<NetworkInterfaceConfig>& ifaces,
                              NetworkInterfaceConfig iface);

// Boot arguments used when the configuration gives none: a serial console, reset through the
// i8042 on reboot, a panic reboots at once (the VMM then sees the reset), no PCI probing.
inline constexpr std::string_view kDefaultBootArgs =
    "console=ttyS0 reboot=k panic=1 pci=off nomodule i8042.noaux i8042.nomux i8042.nopnp "
    "i8042.dumbkbd";

Status ValidateMachineConfig(const MachineConfig& config);
Status ValidateVsockConfig(const VsockConfig& config);

// Parses a whole config file body (Firecracker's FullVmConfiguration shape).
Result<VmResources> ParseVmConfig(std::string_view json_text);
Result<VmResources> LoadVmConfigFile(const std::string& path);

}  // namespace hearth
