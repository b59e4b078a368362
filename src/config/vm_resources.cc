#include "config/vm_resources.h"

#include <fcntl.h>

#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "base/fd.h"

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

// Resources of Firecracker's configuration that Hearth does not provide (yet): refused when
// given with content, so a VM never silently boots without something it asked for.
const std::set<std::string> kUnsupportedResources = {
    "drives", "network-interfaces", "vsock", "balloon", "mmds-config", "entropy",
    "cpu-config", "memory-hotplug", "pmem", "metrics"};

}  // namespace

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
