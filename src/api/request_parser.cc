#include "api/request_parser.h"

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "config/resource_json.h"

namespace hearth {
namespace {

using nlohmann::json;

// Endpoints of Firecracker's API for devices Hearth does not have: a clear refusal, as
// Firecracker gives for a feature it was built without.
constexpr std::pair<std::string_view, std::string_view> kUnsupported[] = {
    {"/balloon", "the balloon device"},          {"/mmds", "MMDS (the metadata service)"},
    {"/entropy", "the entropy device"},          {"/cpu-config", "custom CPU templates"},
    {"/pmem", "virtio-pmem devices"},            {"/hotplug", "memory hot-plug"},
    {"/serial", "redirecting the serial console"},
};

Error BadRoute(std::string_view method, std::string_view path) {
  return Error("Invalid request method and/or path: " + std::string(method) + " " +
               std::string(path));
}

Result<json> ParseBody(std::string_view method, std::string_view body) {
  if (body.empty()) return Error("Empty " + std::string(method) + " request.");
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    return Error(std::string("malformed JSON body: ") + e.what());
  }
  if (!j.is_object()) return Error("the request body must be a JSON object, got " + std::string(j.type_name()));
  return j;
}

Status CheckFields(const json& j, const std::string& where, const std::set<std::string>& known) {
  for (const auto& [key, value] : j.items()) {
    if (!known.contains(key)) return Error(where + ": unknown field '" + key + "'");
  }
  return Ok();
}

Result<std::string> StringField(const json& j, const std::string& where, const char* key, bool required) {
  if (!j.contains(key)) {
    if (required) return Error(where + "." + key + ": missing");
    return std::string();
  }
  const json& v = j.at(key);
  if (!v.is_string()) return Error(where + "." + key + ": expected a string, got " + std::string(v.type_name()));
  return v.get<std::string>();
}

Result<std::optional<bool>> BoolField(const json& j, const std::string& where, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::optional<bool>();
  const json& v = j.at(key);
  if (!v.is_boolean()) return Error(where + "." + key + ": expected a boolean, got " + std::string(v.type_name()));
  return std::optional<bool>(v.get<bool>());
}

// The id in the path must be a valid resource id and equal the one in the body.
Status CheckPathId(std::string_view path_id, const json& j, const std::string& where, const char* key) {
  RETURN_IF_ERROR(ValidateResourceId(path_id, where + " (path)"));
  if (!j.contains(key)) return Error(where + "." + key + ": missing");
  if (!j.at(key).is_string()) return Error(where + "." + key + ": expected a string");
  if (j.at(key).get<std::string>() != path_id) {
    return Error(where + ": the id from the path ('" + std::string(path_id) + "') does not match the " + key +
                 " from the body ('" + j.at(key).get<std::string>() + "')");
  }
  return Ok();
}

Result<ApiAction> ParseActions(const json& j) {
  RETURN_IF_ERROR(CheckFields(j, "actions", {"action_type"}));
  ASSIGN_OR_RETURN(std::string type, StringField(j, "actions", "action_type", true));
  if (type == "InstanceStart") return ApiAction(PutAction{InstanceActionType::kInstanceStart});
  if (type == "SendCtrlAltDel") return ApiAction(PutAction{InstanceActionType::kSendCtrlAltDel});
  if (type == "FlushMetrics") return ApiAction(PutAction{InstanceActionType::kFlushMetrics});
  return Error("actions.action_type: '" + type + "' is not InstanceStart, SendCtrlAltDel or FlushMetrics");
}

Result<ApiAction> ParsePatchMachineConfig(const json& j) {
  // Type-check the fields given by overlaying them on a complete configuration, so the rules
  // are exactly PUT's; then keep only what was given.
  json full = {{"vcpu_count", 1}, {"mem_size_mib", 128}};
  for (const auto& [key, value] : j.items()) full[key] = value;
  auto parsed = ParseMachineConfig(full);
  if (!parsed.ok()) {
    // Range rules that depend on other fields (smt and an odd count) are the controller's:
    // it applies the patch to the current configuration and validates the result.
    const std::string& m = parsed.error().message();
    if (m.find("must be 1 or even") == std::string::npos) return parsed.error();
  }
  PatchMachineConfig patch;
  auto unsigned_of = [](const json& v) {
    return v.is_number_unsigned() ? v.get<uint64_t>() : static_cast<uint64_t>(v.get<int64_t>());
  };
  if (j.contains("vcpu_count")) patch.vcpu_count = static_cast<uint32_t>(unsigned_of(j.at("vcpu_count")));
  if (j.contains("mem_size_mib")) patch.mem_size_mib = unsigned_of(j.at("mem_size_mib"));
  if (j.contains("smt")) patch.smt = j.at("smt").get<bool>();
  if (j.contains("track_dirty_pages")) patch.track_dirty_pages = j.at("track_dirty_pages").get<bool>();
  return ApiAction(patch);
}

Result<ApiAction> ParsePatchDrive(std::string_view id, const json& j) {
  const std::string where = "drive";
  RETURN_IF_ERROR(CheckFields(j, where, {"drive_id", "path_on_host", "rate_limiter"}));
  RETURN_IF_ERROR(CheckPathId(id, j, where, "drive_id"));
  PatchDrive patch;
  patch.drive_id = std::string(id);
  if (j.contains("path_on_host")) {
    ASSIGN_OR_RETURN(patch.path_on_host, StringField(j, where, "path_on_host", true));
    if (patch.path_on_host->empty()) return Error(where + ".path_on_host: empty");
  }
  if (j.contains("rate_limiter") && !j.at("rate_limiter").is_null()) {
    ASSIGN_OR_RETURN(patch.rate_limiter, ParseRateLimiterJson(j.at("rate_limiter"), where + ".rate_limiter"));
  }
  if (!patch.path_on_host && !patch.rate_limiter) {
    return Error(where + ": nothing to update (give path_on_host and/or rate_limiter)");
  }
  return ApiAction(patch);
}

Result<ApiAction> ParsePatchNetworkInterface(std::string_view id, const json& j) {
  const std::string where = "network-interface";
  RETURN_IF_ERROR(CheckFields(j, where, {"iface_id", "rx_rate_limiter", "tx_rate_limiter"}));
  RETURN_IF_ERROR(CheckPathId(id, j, where, "iface_id"));
  PatchNetworkInterface patch;
  patch.iface_id = std::string(id);
  if (j.contains("rx_rate_limiter") && !j.at("rx_rate_limiter").is_null()) {
    ASSIGN_OR_RETURN(patch.rx_rate_limiter,
                     ParseRateLimiterJson(j.at("rx_rate_limiter"), where + ".rx_rate_limiter"));
  }
  if (j.contains("tx_rate_limiter") && !j.at("tx_rate_limiter").is_null()) {
    ASSIGN_OR_RETURN(patch.tx_rate_limiter,
                     ParseRateLimiterJson(j.at("tx_rate_limiter"), where + ".tx_rate_limiter"));
  }
  return ApiAction(patch);
}

Result<ApiAction> ParsePatchVm(const json& j) {
  RETURN_IF_ERROR(CheckFields(j, "vm", {"state"}));
  ASSIGN_OR_RETURN(std::string state, StringField(j, "vm", "state", true));
  if (state == "Paused") return ApiAction(PatchVmState{true});
  if (state == "Resumed") return ApiAction(PatchVmState{false});
  return Error("vm.state: '" + state + "' is not Paused or Resumed");
}

Result<ApiAction> ParseSnapshotCreate(const json& j) {
  const std::string where = "snapshot-create";
  RETURN_IF_ERROR(CheckFields(j, where, {"snapshot_type", "snapshot_path", "mem_file_path", "version"}));
  CreateSnapshot create;
  ASSIGN_OR_RETURN(create.snapshot_path, StringField(j, where, "snapshot_path", true));
  ASSIGN_OR_RETURN(create.mem_file_path, StringField(j, where, "mem_file_path", true));
  if (create.snapshot_path.empty()) return Error(where + ".snapshot_path: empty");
  if (create.mem_file_path.empty()) return Error(where + ".mem_file_path: empty");
  if (j.contains("snapshot_type")) {
    ASSIGN_OR_RETURN(std::string type, StringField(j, where, "snapshot_type", true));
    if (type == "Full") create.type = SnapshotType::kFull;
    else if (type == "Diff") create.type = SnapshotType::kDiff;
    else return Error(where + ".snapshot_type: '" + type + "' is not Full or Diff");
  }
  if (j.contains("version")) {
    return Error(where + ".version: choosing the snapshot format version is not supported");
  }
  return ApiAction(create);
}

Result<ApiAction> ParseSnapshotLoad(const json& j) {
  const std::string where = "snapshot-load";
  RETURN_IF_ERROR(CheckFields(j, where, {"snapshot_path", "mem_file_path", "mem_backend", "enable_diff_snapshots",
                                         "track_dirty_pages", "resume_vm", "network_overrides",
                                         "vsock_override", "clock_realtime", "huge_pages"}));
  LoadSnapshot load;
  ASSIGN_OR_RETURN(load.snapshot_path, StringField(j, where, "snapshot_path", true));
  if (load.snapshot_path.empty()) return Error(where + ".snapshot_path: empty");
  const bool has_file = j.contains("mem_file_path");
  const bool has_backend = j.contains("mem_backend");
  if (has_file == has_backend) {
    return Error(where + ": exactly one of mem_file_path and mem_backend must be given");
  }
  if (has_file) {
    ASSIGN_OR_RETURN(load.backend_path, StringField(j, where, "mem_file_path", true));
  } else {
    const json& backend = j.at("mem_backend");
    const std::string bw = where + ".mem_backend";
    if (!backend.is_object()) return Error(bw + ": expected an object");
    RETURN_IF_ERROR(CheckFields(backend, bw, {"backend_type", "backend_path"}));
    ASSIGN_OR_RETURN(std::string type, StringField(backend, bw, "backend_type", true));
    if (type == "File") load.backend_type = MemBackendType::kFile;
    else if (type == "Uffd") load.backend_type = MemBackendType::kUffd;
    else return Error(bw + ".backend_type: '" + type + "' is not File or Uffd");
    ASSIGN_OR_RETURN(load.backend_path, StringField(backend, bw, "backend_path", true));
  }
  if (load.backend_path.empty()) return Error(where + ": the memory backend path is empty");
  ASSIGN_OR_RETURN(auto diff, BoolField(j, where, "enable_diff_snapshots"));
  ASSIGN_OR_RETURN(auto track, BoolField(j, where, "track_dirty_pages"));
  load.track_dirty_pages = diff.value_or(false) || track.value_or(false);
  ASSIGN_OR_RETURN(auto resume, BoolField(j, where, "resume_vm"));
  load.resume_vm = resume.value_or(false);
  ASSIGN_OR_RETURN(auto realtime, BoolField(j, where, "clock_realtime"));
  load.clock_realtime = realtime.value_or(false);
  if (j.contains("huge_pages")) {
    ASSIGN_OR_RETURN(std::string pages, StringField(j, where, "huge_pages", true));
    if (pages != "Snapshot" && pages != "None") {
      return Error(where + ".huge_pages: '" + pages + "' is not supported (only Snapshot or None)");
    }
  }
  if (j.contains("network_overrides")) {
    const json& list = j.at("network_overrides");
    if (!list.is_array()) return Error(where + ".network_overrides: expected an array");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string ow = where + ".network_overrides[" + std::to_string(i) + "]";
      if (!list[i].is_object()) return Error(ow + ": expected an object");
      RETURN_IF_ERROR(CheckFields(list[i], ow, {"iface_id", "host_dev_name"}));
      NetworkOverride o;
      ASSIGN_OR_RETURN(o.iface_id, StringField(list[i], ow, "iface_id", true));
      RETURN_IF_ERROR(ValidateResourceId(o.iface_id, ow + ".iface_id"));
      ASSIGN_OR_RETURN(o.host_dev_name, StringField(list[i], ow, "host_dev_name", true));
      if (o.host_dev_name.empty() || o.host_dev_name.size() > 15) {
        return Error(ow + ".host_dev_name: '" + o.host_dev_name + "' is not a valid interface name");
      }
      load.network_overrides.push_back(std::move(o));
    }
  }
  if (j.contains("vsock_override")) {
    const json& v = j.at("vsock_override");
    const std::string vw = where + ".vsock_override";
    if (!v.is_object()) return Error(vw + ": expected an object");
    RETURN_IF_ERROR(CheckFields(v, vw, {"uds_path"}));
    ASSIGN_OR_RETURN(std::string uds, StringField(v, vw, "uds_path", true));
    if (uds.empty()) return Error(vw + ".uds_path: empty");
    load.vsock_uds_path = uds;
  }
  return ApiAction(load);
}

Result<ApiAction> ParseWithBody(std::string_view method, std::string_view path, const json& j) {
  const bool put = method == "PUT";
  if (path == "/actions" && put) return ParseActions(j);
  if (path == "/boot-source" && put) {
    ASSIGN_OR_RETURN(auto config, ParseBootSource(j));
    return ApiAction(PutBootSource{std::move(config)});
  }
  if (path == "/machine-config") {
    if (put) {
      ASSIGN_OR_RETURN(auto config, ParseMachineConfig(j));
      return ApiAction(PutMachineConfig{config});
    }
    return ParsePatchMachineConfig(j);
  }
  if (path == "/vsock" && put) {
    ASSIGN_OR_RETURN(auto config, ParseVsock(j));
    return ApiAction(PutVsock{std::move(config)});
  }
  if (path == "/logger" && put) {
    ASSIGN_OR_RETURN(auto config, ParseLogger(j));
    if (config.level) {
      static const std::set<std::string> kLevels = {"error", "warning", "info", "debug", "trace", "off"};
      std::string lower = *config.level;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!kLevels.contains(lower)) {
        return Error("logger.level: '" + *config.level + "' is not Error, Warning, Info, Debug, Trace or Off");
      }
    }
    if (config.log_path && config.log_path->empty()) return Error("logger.log_path: empty");
    return ApiAction(PutLogger{std::move(config)});
  }
  if (path == "/metrics" && put) {
    ASSIGN_OR_RETURN(auto config, ParseMetrics(j));
    return ApiAction(PutMetrics{std::move(config)});
  }
  if (path == "/vm" && !put) return ParsePatchVm(j);
  if (path == "/snapshot/create" && put) return ParseSnapshotCreate(j);
  if (path == "/snapshot/load" && put) return ParseSnapshotLoad(j);
  if (path.starts_with("/drives/")) {
    std::string_view id = path.substr(8);
    if (put) {
      RETURN_IF_ERROR(CheckPathId(id, j, "drive", "drive_id"));
      ASSIGN_OR_RETURN(auto config, ParseDrive(j, "drive"));
      return ApiAction(PutDrive{std::move(config)});
    }
    return ParsePatchDrive(id, j);
  }
  if (path.starts_with("/network-interfaces/")) {
    std::string_view id = path.substr(20);
    if (put) {
      RETURN_IF_ERROR(CheckPathId(id, j, "network-interface", "iface_id"));
      ASSIGN_OR_RETURN(auto config, ParseNetworkInterface(j, "network-interface"));
      return ApiAction(PutNetworkInterface{std::move(config)});
    }
    return ParsePatchNetworkInterface(id, j);
  }
  return BadRoute(method, path);
}

// Which methods each path takes; the id-bearing paths are matched by prefix.
bool RouteExists(std::string_view method, std::string_view path) {
  struct Route {
    std::string_view path;
    std::string_view methods;
  };
  static constexpr Route kRoutes[] = {
      {"/", "GET"},          {"/version", "GET"},        {"/machine-config", "GET PUT PATCH"},
      {"/vm/config", "GET"}, {"/actions", "PUT"},        {"/boot-source", "PUT"},
      {"/vsock", "PUT"},     {"/logger", "PUT"},         {"/metrics", "PUT"},
      {"/vm", "PATCH"},      {"/snapshot/create", "PUT"}, {"/snapshot/load", "PUT"},
  };
  auto allowed = [&](std::string_view methods) {
    size_t pos = methods.find(method);
    return pos != std::string_view::npos && (pos + method.size() == methods.size() || methods[pos + method.size()] == ' ') &&
           (pos == 0 || methods[pos - 1] == ' ');
  };
  for (const auto& r : kRoutes) {
    if (r.path == path) return allowed(r.methods);
  }
  for (std::string_view prefix : {std::string_view("/drives/"), std::string_view("/network-interfaces/")}) {
    if (path.starts_with(prefix) && path.size() > prefix.size() &&
        path.find('/', prefix.size()) == std::string_view::npos) {
      return allowed("PUT PATCH");
    }
  }
  return false;
}

}  // namespace

Result<ApiAction> ParseApiRequest(std::string_view method, std::string_view path, std::string_view body) {
  if (body.size() > kMaxApiBodyBytes) {
    return Error("Request payload with size " + std::to_string(body.size()) + " is larger than the limit of " +
                 std::to_string(kMaxApiBodyBytes) + " allowed by server.");
  }
  for (const auto& [prefix, what] : kUnsupported) {
    if (path == prefix || (path.starts_with(prefix) && path[prefix.size()] == '/')) {
      return Error(std::string(path) + ": " + std::string(what) + " is not supported by Hearth");
    }
  }
  if (!RouteExists(method, path)) return BadRoute(method, path);
  if (method == "GET") {
    if (!body.empty()) return Error("GET request cannot have a body.");
    if (path == "/") return ApiAction(GetInstanceInfo{});
    if (path == "/version") return ApiAction(GetVersion{});
    if (path == "/machine-config") return ApiAction(GetMachineConfig{});
    if (path == "/vm/config") return ApiAction(GetVmConfig{});
    return BadRoute(method, path);
  }
  ASSIGN_OR_RETURN(json j, ParseBody(method, body));
  return ParseWithBody(method, path, j);
}

const char* ActionName(const ApiAction& action) {
  static constexpr const char* kNames[] = {
      "get_instance_info", "get_version",       "get_machine_config", "get_vm_config",
      "put_boot_source",   "put_machine_config", "patch_machine_config", "put_drive",
      "patch_drive",       "put_network_interface", "patch_network_interface", "put_vsock",
      "put_logger",        "put_metrics",        "put_action",         "patch_vm",
      "create_snapshot",   "load_snapshot"};
  static_assert(std::size(kNames) == std::variant_size_v<ApiAction>);
  return kNames[action.index()];
}

ApiResponse ApiResponse::Fault(std::string_view message, int status) {
  return {status, json{{"fault_message", std::string(message)}}.dump()};
}

}  // namespace hearth
