#include "config/vm_resources.h"

#include <fcntl.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "base/fd.h"
#include "config/resource_json.h"

namespace hearth {
namespace {

using nlohmann::json;

constexpr uint64_t kMaxConfigFileSize = 1 << 20;

std::string TypeName(const json& j) { return j.type_name(); }

// Refuses members not in `known`, naming the first unknown one.
Status CheckKnownFields(const json& object, const std::string& where,
                        const std::set<std::string>& known) {
  for (const auto& [key, value] : object.items()) {
    if (!known.contains(key)) return Error(where + ": unknown field '" + key + "'");
  }
  return Ok();
}

Result<std::string> GetString(const json& object, const std::string& where, const char* key) {
  const json& v = object.at(key);
  if (!v.is_string()) return Error(where + "." + key + ": expected a string, got " + TypeName(v));
  return v.get<std::string>();
}

Result<bool> GetBool(const json& object, const std::string& where, const char* key) {
  const json& v = object.at(key);
  if (!v.is_boolean()) return Error(where + "." + key + ": expected a boolean, got " + TypeName(v));
  return v.get<bool>();
}

Result<uint64_t> GetUnsigned(const json& object, const std::string& where, const char* key) {
  const json& v = object.at(key);
  if (!v.is_number_integer()) {
    return Error(where + "." + key + ": expected an integer, got " + TypeName(v));
  }
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  int64_t s = v.get<int64_t>();
  if (s < 0) return Error(where + "." + key + ": must not be negative");
  return static_cast<uint64_t>(s);
}

}  // namespace

Result<TokenBucketConfig> ParseTokenBucket(const json& j, const std::string& where) {
  if (!j.is_object()) return Error(where + ": expected an object");
  RETURN_IF_ERROR(CheckKnownFields(j, where, {"size", "one_time_burst", "refill_time"}));
  for (const char* required : {"size", "refill_time"}) {
    if (!j.contains(required)) return Error(where + "." + required + ": missing");
  }
  TokenBucketConfig bucket;
  ASSIGN_OR_RETURN(bucket.size, GetUnsigned(j, where, "size"));
  ASSIGN_OR_RETURN(bucket.refill_time_ms, GetUnsigned(j, where, "refill_time"));
  if (j.contains("one_time_burst") && !j.at("one_time_burst").is_null()) {
    ASSIGN_OR_RETURN(bucket.one_time_burst, GetUnsigned(j, where, "one_time_burst"));
  }
  // int64 in Firecracker's API: larger values cannot come from a conforming client.
  constexpr uint64_t kMax = uint64_t{INT64_MAX};
  if (bucket.size > kMax || bucket.one_time_burst > kMax || bucket.refill_time_ms > kMax) {
    return Error(where + ": values must fit in a signed 64-bit integer");
  }
  return bucket;
}

Result<RateLimiterConfig> ParseRateLimiterJson(const json& j, const std::string& where) {
  if (!j.is_object()) return Error(where + ": expected an object");
  RETURN_IF_ERROR(CheckKnownFields(j, where, {"bandwidth", "ops"}));
  RateLimiterConfig limiter;
  if (j.contains("bandwidth") && !j.at("bandwidth").is_null()) {
    ASSIGN_OR_RETURN(limiter.bandwidth, ParseTokenBucket(j.at("bandwidth"), where + ".bandwidth"));
  }
  if (j.contains("ops") && !j.at("ops").is_null()) {
    ASSIGN_OR_RETURN(limiter.ops, ParseTokenBucket(j.at("ops"), where + ".ops"));
  }
  return limiter;
}

Result<BootSourceConfig> ParseBootSource(const json& j) {
  const std::string where = "boot-source";
  if (!j.is_object()) return Error(where + ": expected an object");
  RETURN_IF_ERROR(CheckKnownFields(j, where, {"kernel_image_path", "boot_args", "initrd_path"}));
  if (!j.contains("kernel_image_path")) return Error(where + ".kernel_image_path: missing");
  BootSourceConfig config;
  ASSIGN_OR_RETURN(config.kernel_image_path, GetString(j, where, "kernel_image_path"));
  if (config.kernel_image_path.empty()) return Error(where + ".kernel_image_path: empty");
  if (j.contains("boot_args")) {
    ASSIGN_OR_RETURN(config.boot_args, GetString(j, where, "boot_args"));
  }
  if (j.contains("initrd_path")) {
    ASSIGN_OR_RETURN(config.initrd_path, GetString(j, where, "initrd_path"));
  }
  return config;
}

Result<MachineConfig> ParseMachineConfig(const json& j) {
  const std::string where = "machine-config";
  if (!j.is_object()) return Error(where + ": expected an object");
  RETURN_IF_ERROR(CheckKnownFields(
      j, where, {"vcpu_count", "mem_size_mib", "smt", "track_dirty_pages", "cpu_template", "huge_pages"}));
  for (const char* required : {"vcpu_count", "mem_size_mib"}) {
    if (!j.contains(required)) return Error(where + "." + required + ": missing");
  }
  MachineConfig config;
  ASSIGN_OR_RETURN(uint64_t vcpus, GetUnsigned(j, where, "vcpu_count"));
  if (vcpus > MachineConfig::kMaxVcpus) {
    return Error(where + ".vcpu_count: " + std::to_string(vcpus) + " is more than 32");
  }
  config.vcpu_count = static_cast<uint32_t>(vcpus);
  ASSIGN_OR_RETURN(config.mem_size_mib, GetUnsigned(j, where, "mem_size_mib"));
  if (j.contains("smt")) {
    ASSIGN_OR_RETURN(config.smt, GetBool(j, where, "smt"));
  }
  if (j.contains("track_dirty_pages")) {
    ASSIGN_OR_RETURN(config.track_dirty_pages, GetBool(j, where, "track_dirty_pages"));
  }
  if (j.contains("cpu_template")) {
    ASSIGN_OR_RETURN(std::string tmpl, GetString(j, where, "cpu_template"));
    if (tmpl != "None") return Error(where + ".cpu_template: '" + tmpl + "' is not supported (only None)");
  }
  if (j.contains("huge_pages")) {
    ASSIGN_OR_RETURN(std::string pages, GetString(j, where, "huge_pages"));
    if (pages != "None") return Error(where + ".huge_pages: '" + pages + "' is not supported (only None)");
  }
  RETURN_IF_ERROR(ValidateMachineConfig(config));
  return config;
}

Result<LoggerConfig> ParseLogger(const json& j) {
  const std::string where = "logger";
  if (!j.is_object()) return Error(where + ": expected an object");
  RETURN_IF_ERROR(CheckKnownFields(j, where, {"log_path", "level", "show_level", "show_log_origin", "module"}));
  LoggerConfig config;
  if (j.contains("log_path")) {
    ASSIGN_OR_RETURN(config.log_path, GetString(j, where, "log_path"));
  }
  if (j.contains("level")) {
    ASSIGN_OR_RETURN(config.level, GetString(j, where, "level"));
  }
  if (j.contains("show_level")) {
    ASSIGN_OR_RETURN(config.show_level, GetBool(j, where, "show_level"));
  }
  if (j.contains("show_log_origin")) {
    ASSIGN_OR_RETURN(config.show_log_origin, GetBool(j, where, "show_log_origin"));
  }
  if (j.contains("module")) {
    ASSIGN_OR_RETURN(std::string module, GetString(j, where, "module"));
    (void)module;  // Accepted for compatibility; Hearth logs all modules.
  }
  return config;
}

Result<DriveConfig> ParseDrive(const json& j, const std::string& where) {
  if (!j.is_object()) return Error(where + ": expected an object");
  RETURN_IF_ERROR(CheckKnownFields(j, where, {"drive_id", "path_on_host", "is_root_device",
                                              "is_read_only", "partuuid", "cache_type",
                                              "io_engine", "rate_limiter", "socket"}));
  for (const char* required : {"drive_id", "is_root_device"}) {
    if (!j.contains(required)) return Error(where + "." + required + ": missing");
  }
  DriveConfig drive;
  ASSIGN_OR_RETURN(drive.drive_id, GetString(j, where, "drive_id"));
  RETURN_IF_ERROR(ValidateResourceId(drive.drive_id, where + ".drive_id"));
  if (j.contains("socket")) return Error(where + ".socket: vhost-user block devices are not supported");
  if (!j.contains("path_on_host")) return Error(where + ".path_on_host: missing");
  ASSIGN_OR_RETURN(drive.path_on_host, GetString(j, where, "path_on_host"));
  if (drive.path_on_host.empty()) return Error(where + ".path_on_host: empty");
  ASSIGN_OR_RETURN(drive.is_root_device, GetBool(j, where, "is_root_device"));
  if (j.contains("is_read_only")) {
    ASSIGN_OR_RETURN(drive.is_read_only, GetBool(j, where, "is_read_only"));
  }
  if (j.contains("partuuid")) {
    ASSIGN_OR_RETURN(drive.partuuid, GetString(j, where, "partuuid"));
    for (char c : *drive.partuuid) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != '-') {
        return Error(where + ".partuuid: '" + *drive.partuuid + "' is not a partition UUID");
      }
    }
  }
  if (j.contains("cache_type")) {
    ASSIGN_OR_RETURN(std::string cache, GetString(j, where, "cache_type"));
    if (cache == "Unsafe") drive.cache_type = CacheType::kUnsafe;
    else if (cache == "Writeback") drive.cache_type = CacheType::kWriteback;
    else return Error(where + ".cache_type: '" + cache + "' is not Unsafe or Writeback");
  }
  if (j.contains("io_engine")) {
    ASSIGN_OR_RETURN(std::string engine, GetString(j, where, "io_engine"));
    if (engine == "Sync") drive.io_engine = IoEngine::kSync;
    else if (engine == "Async") drive.io_engine = IoEngine::kAsync;
    else return Error(where + ".io_engine: '" + engine + "' is not Sync or Async");
  }
  if (j.contains("rate_limiter") && !j.at("rate_limiter").is_null()) {
    ASSIGN_OR_RETURN(drive.rate_limiter, ParseRateLimiterJson(j.at("rate_limiter"), where + ".rate_limiter"));
  }
  return drive;
}

Result<NetworkInterfaceConfig> ParseNetworkInterface(const json& j, const std::string& where) {
  if (!j.is_object()) return Error(where + ": expected an object");
  RETURN_IF_ERROR(CheckKnownFields(j, where, {"iface_id", "host_dev_name", "guest_mac", "mtu",
                                              "rx_rate_limiter", "tx_rate_limiter"}));
  for (const char* required : {"iface_id", "host_dev_name"}) {
    if (!j.contains(required)) return Error(where + "." + required + ": missing");
  }
  NetworkInterfaceConfig iface;
  ASSIGN_OR_RETURN(iface.iface_id, GetString(j, where, "iface_id"));
  RETURN_IF_ERROR(ValidateResourceId(iface.iface_id, where + ".iface_id"));
  ASSIGN_OR_RETURN(iface.host_dev_name, GetString(j, where, "host_dev_name"));
  // IFNAMSIZ is 16 including the NUL; a '/' or whitespace can never name an interface.
  if (iface.host_dev_name.empty() || iface.host_dev_name.size() > 15 ||
      iface.host_dev_name.find_first_of("/ \t\n") != std::string::npos) {
    return Error(where + ".host_dev_name: '" + iface.host_dev_name + "' is not a valid interface name");
  }
  if (j.contains("guest_mac")) {
    ASSIGN_OR_RETURN(std::string mac, GetString(j, where, "guest_mac"));
    auto parsed = ParseMac(mac);
    if (!parsed.ok()) return parsed.error().Wrap(where + ".guest_mac");
    iface.guest_mac = *parsed;
  }
  if (j.contains("mtu")) {
    ASSIGN_OR_RETURN(uint64_t mtu, GetUnsigned(j, where, "mtu"));
    if (mtu < 68 || mtu > 65535) return Error(where + ".mtu: " + std::to_string(mtu) + " is not within 68 to 65535");
    // VIRTIO_NET_F_MTU is not offered yet: refuse rather than ignore what the user asked for.
    return Error(where + ".mtu: not supported by this version of Hearth");
  }
  if (j.contains("rx_rate_limiter") && !j.at("rx_rate_limiter").is_null()) {
    ASSIGN_OR_RETURN(iface.rx_rate_limiter,
                     ParseRateLimiterJson(j.at("rx_rate_limiter"), where + ".rx_rate_limiter"));
  }
  if (j.contains("tx_rate_limiter") && !j.at("tx_rate_limiter").is_null()) {
    ASSIGN_OR_RETURN(iface.tx_rate_limiter,
                     ParseRateLimiterJson(j.at("tx_rate_limiter"), where + ".tx_rate_limiter"));
  }
  return iface;
}

Result<VsockConfig> ParseVsock(const json& j) {
  const std::string where = "vsock";
  if (!j.is_object()) return Error(where + ": expected an object");
  RETURN_IF_ERROR(CheckKnownFields(j, where, {"guest_cid", "uds_path", "vsock_id"}));
  for (const char* required : {"guest_cid", "uds_path"}) {
    if (!j.contains(required)) return Error(where + "." + required + ": missing");
  }
  VsockConfig config;
  ASSIGN_OR_RETURN(uint64_t cid, GetUnsigned(j, where, "guest_cid"));
  if (cid > UINT32_MAX) return Error(where + ".guest_cid: " + std::to_string(cid) + " does not fit in 32 bits");
  config.guest_cid = static_cast<uint32_t>(cid);
  ASSIGN_OR_RETURN(config.uds_path, GetString(j, where, "uds_path"));
  if (j.contains("vsock_id")) {
    ASSIGN_OR_RETURN(config.vsock_id, GetString(j, where, "vsock_id"));
  }
  RETURN_IF_ERROR(ValidateVsockConfig(config));
  return config;
}

Result<MetricsConfig> ParseMetrics(const json& j) {
  const std::string where = "metrics";
  if (!j.is_object()) return Error(where + ": expected an object");
  RETURN_IF_ERROR(CheckKnownFields(j, where, {"metrics_path", "emit_id"}));
  if (!j.contains("metrics_path")) return Error(where + ".metrics_path: missing");
  MetricsConfig config;
  ASSIGN_OR_RETURN(config.metrics_path, GetString(j, where, "metrics_path"));
  if (config.metrics_path.empty()) return Error(where + ".metrics_path: empty");
  if (j.contains("emit_id")) {
    ASSIGN_OR_RETURN(bool emit_id, GetBool(j, where, "emit_id"));
    (void)emit_id;  // Accepted for compatibility: every flush names the instance id.
  }
  return config;
}

namespace {

// Resources of Firecracker's configuration that Hearth does not provide (yet): refused when
// given with content, so a VM never silently boots without something it asked for.
const std::set<std::string> kUnsupportedResources = {
    "balloon", "mmds-config", "entropy", "cpu-config", "memory-hotplug", "pmem"};

}  // namespace

Status ValidateResourceId(std::string_view id, const std::string& field) {
  if (id.empty() || id.size() > 64) return Error(field + ": must be 1 to 64 characters");
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return Error(field + ": '" + std::string(id) + "' may contain only letters, digits and '_'");
    }
  }
  return Ok();
}

Result<std::array<uint8_t, 6>> ParseMac(std::string_view text) {
  std::array<uint8_t, 6> mac{};
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (text.size() != 17) return Error("'" + std::string(text) + "' is not a MAC address (xx:xx:xx:xx:xx:xx)");
  for (size_t i = 0; i < 6; ++i) {
    int hi = hex(text[i * 3]);
    int lo = hex(text[i * 3 + 1]);
    if (hi < 0 || lo < 0 || (i < 5 && text[i * 3 + 2] != ':')) {
      return Error("'" + std::string(text) + "' is not a MAC address (xx:xx:xx:xx:xx:xx)");
    }
    mac[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  if (mac[0] & 1) return Error("'" + std::string(text) + "' is a multicast MAC address");
  return mac;
}

Status InsertDrive(std::vector<DriveConfig>& drives, DriveConfig drive) {
  for (const auto& d : drives) {
    if (d.drive_id != drive.drive_id && d.is_root_device && drive.is_root_device) {
      return Error("drive '" + drive.drive_id + "': drive '" + d.drive_id + "' is already the root device");
    }
  }
  auto same = std::find_if(drives.begin(), drives.end(),
                           [&](const DriveConfig& d) { return d.drive_id == drive.drive_id; });
  if (same != drives.end()) drives.erase(same);
  // The root device becomes /dev/vda: keep it first.
  if (drive.is_root_device) {
    drives.insert(drives.begin(), std::move(drive));
  } else {
    drives.push_back(std::move(drive));
  }
  return Ok();
}

Status InsertNetworkInterface(std::vector<NetworkInterfaceConfig>& ifaces, NetworkInterfaceConfig iface) {
  for (const auto& other : ifaces) {
    if (other.iface_id == iface.iface_id) continue;
    if (other.host_dev_name == iface.host_dev_name) {
      return Error("network interface '" + iface.iface_id + "': host_dev_name '" + iface.host_dev_name +
                   "' is already used by '" + other.iface_id + "'");
    }
    if (iface.guest_mac && other.guest_mac == iface.guest_mac) {
      return Error("network interface '" + iface.iface_id + "': guest_mac is already used by '" +
                   other.iface_id + "'");
    }
  }
  auto same = std::find_if(ifaces.begin(), ifaces.end(),
                           [&](const NetworkInterfaceConfig& i) { return i.iface_id == iface.iface_id; });
  if (same != ifaces.end()) {
    *same = std::move(iface);
  } else {
    ifaces.push_back(std::move(iface));
  }
  return Ok();
}

Status ValidateVsockConfig(const VsockConfig& config) {
  if (config.guest_cid < VsockConfig::kMinGuestCid) {
    return Error("vsock.guest_cid: " + std::to_string(config.guest_cid) +
                 " is reserved (0 to 2 name the hypervisor and the host); use 3 or more");
  }
  // sun_path holds 108 bytes including the NUL, and guest-initiated connections append "_<port>"
  // (up to 11 more characters).
  if (config.uds_path.empty()) return Error("vsock.uds_path: empty");
  if (config.uds_path.size() + 11 > 107) {
    return Error("vsock.uds_path: '" + config.uds_path + "' is too long for a UNIX socket path");
  }
  if (config.vsock_id) {
    RETURN_IF_ERROR(ValidateResourceId(*config.vsock_id, "vsock.vsock_id"));
  }
  return Ok();
}

Status ValidateMachineConfig(const MachineConfig& config) {
  if (config.vcpu_count == 0 || config.vcpu_count > MachineConfig::kMaxVcpus) {
    return Error("machine-config.vcpu_count: " + std::to_string(config.vcpu_count) +
                 " is out of range (1 to 32)");
  }
  if (config.smt && config.vcpu_count != 1 && config.vcpu_count % 2 != 0) {
    return Error("machine-config.vcpu_count: " + std::to_string(config.vcpu_count) +
                 " must be 1 or even when smt is enabled");
  }
  if (config.mem_size_mib == 0) return Error("machine-config.mem_size_mib: must be greater than 0");
  if (config.mem_size_mib > MachineConfig::kMaxMemMib) {
    return Error("machine-config.mem_size_mib: " + std::to_string(config.mem_size_mib) +
                 " MiB is more than Hearth supports (16 TiB)");
  }
  return Ok();
}

Result<VmResources> ParseVmConfig(std::string_view json_text) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {
    return Error(std::string("malformed JSON: ") + e.what());
  }
  if (!root.is_object()) return Error("the configuration must be a JSON object");
  VmResources resources;
  for (const auto& [key, value] : root.items()) {
    if (key == "boot-source") {
      ASSIGN_OR_RETURN(resources.boot_source, ParseBootSource(value));
    } else if (key == "machine-config") {
      ASSIGN_OR_RETURN(resources.machine, ParseMachineConfig(value));
    } else if (key == "logger") {
      ASSIGN_OR_RETURN(resources.logger, ParseLogger(value));
    } else if (key == "drives") {
      if (!value.is_array()) return Error("drives: expected an array");
      for (size_t i = 0; i < value.size(); ++i) {
        const std::string where = "drives[" + std::to_string(i) + "]";
        ASSIGN_OR_RETURN(DriveConfig drive, ParseDrive(value[i], where));
        if (auto s = InsertDrive(resources.drives, std::move(drive)); !s.ok()) {
          return s.error().Wrap(where);
        }
      }
    } else if (key == "network-interfaces") {
      if (!value.is_array()) return Error("network-interfaces: expected an array");
      for (size_t i = 0; i < value.size(); ++i) {
        const std::string where = "network-interfaces[" + std::to_string(i) + "]";
        ASSIGN_OR_RETURN(NetworkInterfaceConfig iface, ParseNetworkInterface(value[i], where));
        if (auto s = InsertNetworkInterface(resources.network_interfaces, std::move(iface)); !s.ok()) {
          return s.error().Wrap(where);
        }
      }
    } else if (key == "vsock") {
      if (!value.is_null()) {
        ASSIGN_OR_RETURN(resources.vsock, ParseVsock(value));
      }
    } else if (key == "metrics") {
      if (!value.is_null()) {
        ASSIGN_OR_RETURN(resources.metrics, ParseMetrics(value));
      }
    } else if (kUnsupportedResources.contains(key)) {
      bool empty = value.is_null() || (value.is_array() && value.empty());
      if (!empty) return Error(key + ": not supported by this version of Hearth");
    } else {
      return Error("unknown field '" + key + "'");
    }
  }
  if (!resources.boot_source) return Error("boot-source: missing");
  return resources;
}

Result<VmResources> LoadVmConfigFile(const std::string& path) {
  ASSIGN_OR_RETURN(Fd fd, Fd::Open(path, O_RDONLY));
  ASSIGN_OR_RETURN(uint64_t size, RegularFileSize(fd.get(), path));
  if (size > kMaxConfigFileSize) return Error("config file " + path + " is larger than 1 MiB");
  std::string text(size, '\0');
  RETURN_IF_ERROR(PreadExact(fd.get(), text.data(), size, 0, "config file " + path));
  auto parsed = ParseVmConfig(text);
  if (!parsed.ok()) return parsed.error().Wrap("config file " + path);
  return parsed;
}

}  // namespace hearth
