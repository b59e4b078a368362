#include "vmm/vmm_controller.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/log.h"
#include "base/version.h"
#include "config/resource_json.h"
#include "virtio/block/block.h"
#include "virtio/net/net.h"

namespace hearth {
namespace {

using nlohmann::json;

// Firecracker's wording for calls made in the wrong phase.
constexpr const char* kNotAfterStart = "The requested operation is not supported after starting the microVM.";
constexpr const char* kNotBeforeStart = "The requested operation is not supported before starting the microVM.";

// A path the user names must exist and be of the expected kind when it is given, not only
// when the VM starts, so the error comes back on the request that made it.
Status CheckReadableFile(const std::string& path, const std::string& what, bool allow_block_device) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Error(what + " '" + path + "': " + std::strerror(errno));
  const bool ok = S_ISREG(st.st_mode) || (allow_block_device && S_ISBLK(st.st_mode));
  if (!ok) {
    return Error(what + " '" + path + "': not a regular file" + (allow_block_device ? " or block device" : ""));
  }
  if (::access(path.c_str(), R_OK) != 0) return Error(what + " '" + path + "': " + std::strerror(errno));
  return Ok();
}

}  // namespace

VmmController::VmmController(ControllerOptions options, EventLoop& loop, std::function<void()> on_vm_stopped)
    : options_(std::move(options)), loop_(loop), on_vm_stopped_(std::move(on_vm_stopped)) {}

VmmController::~VmmController() {
  if (vm_) StopVm();
}

ApiResponse VmmController::Handle(const ApiAction& action) {
  return std::visit([this](const auto& a) { return Do(a); }, action);
}

const char* VmmController::StateName() const {
  if (!vm_) return "Not started";
  return vm_->paused() ? "Paused" : "Running";
}

ApiResponse VmmController::Do(const GetInstanceInfo&) {
  return ApiResponse::Json(json{{"app_name", "hearth"},
                                {"id", options_.instance_id},
                                {"state", StateName()},
                                {"vmm_version", kHearthVersion}}
                               .dump());
}

ApiResponse VmmController::Do(const GetVersion&) {
  return ApiResponse::Json(json{{"firecracker_version", kHearthVersion}}.dump());
}

ApiResponse VmmController::Do(const GetMachineConfig&) {
  return ApiResponse::Json(MachineConfigToJson(resources_.machine).dump());
}

ApiResponse VmmController::Do(const GetVmConfig&) { return ApiResponse::Json(VmResourcesToJson(resources_).dump()); }

ApiResponse VmmController::Do(const PutBootSource& put) {
  if (vm_) return ApiResponse::Fault(kNotAfterStart);
  if (auto s = CheckReadableFile(put.config.kernel_image_path, "boot-source.kernel_image_path", false); !s.ok()) {
    return ApiResponse::Fault(s.error().message());
  }
  if (put.config.initrd_path) {
    if (auto s = CheckReadableFile(*put.config.initrd_path, "boot-source.initrd_path", false); !s.ok()) {
      return ApiResponse::Fault(s.error().message());
    }
  }
  resources_.boot_source = put.config;
  configured_ = true;
  return ApiResponse::NoContent();
}

ApiResponse VmmController::Do(const PutMachineConfig& put) {
  if (vm_) return ApiResponse::Fault(kNotAfterStart);
  resources_.machine = put.config;
  configured_ = true;
  return ApiResponse::NoContent();
}

ApiResponse VmmController::Do(const PatchMachineConfig& patch) {
  if (vm_) return ApiResponse::Fault(kNotAfterStart);
  MachineConfig next = resources_.machine;
  if (patch.vcpu_count) next.vcpu_count = *patch.vcpu_count;
  if (patch.mem_size_mib) next.mem_size_mib = *patch.mem_size_mib;
  if (patch.smt) next.smt = *patch.smt;
  if (patch.track_dirty_pages) next.track_dirty_pages = *patch.track_dirty_pages;
  if (auto s = ValidateMachineConfig(next); !s.ok()) return ApiResponse::Fault(s.error().message());
  resources_.machine = next;
  configured_ = true;
  return ApiResponse::NoContent();
}

ApiResponse VmmController::Do(const PutDrive& put) {
  if (vm_) return ApiResponse::Fault(kNotAfterStart);
  if (auto s = CheckReadableFile(put.config.path_on_host, "drive.path_on_host", true); !s.ok()) {
    return ApiResponse::Fault(s.error().message());
  }
  if (!put.config.is_read_only && ::access(put.config.path_on_host.c_str(), W_OK) != 0) {
    return ApiResponse::Fault("drive.path_on_host '" + put.config.path_on_host + "': not writable (" +
                              std::strerror(errno) + "); set is_read_only for a read-only image");
  }
  if (auto s = InsertDrive(resources_.drives, put.config); !s.ok()) return ApiResponse::Fault(s.error().message());
  configured_ = true;
  return ApiResponse::NoContent();
}

ApiResponse VmmController::Do(const PatchDrive& patch) {
  if (!vm_) return ApiResponse::Fault(kNotBeforeStart);
  auto drive = std::find_if(resources_.drives.begin(), resources_.drives.end(),
                            [&](const DriveConfig& d) { return d.drive_id == patch.drive_id; });
  MmioDevices::Attached* attached = vm_->devices().Find(patch.drive_id);
  if (drive == resources_.drives.end() || attached == nullptr) {
    return ApiResponse::Fault("drive '" + patch.drive_id + "': no such drive");
  }
  if (patch.path_on_host) {
    if (auto s = CheckReadableFile(*patch.path_on_host, "drive.path_on_host", true); !s.ok()) {
      return ApiResponse::Fault(s.error().message());
    }
  }
  if (!vm_->paused()) vm_->devices().Unwatch(loop_);
  Status updated = attached->transport->With([&](MmioTransport& t) -> Status {
    auto* block = dynamic_cast<Block*>(&t.device());
    if (block == nullptr) return Error("drive '" + patch.drive_id + "' is not a block device");
    if (patch.path_on_host) {
      RETURN_IF_ERROR(block->UpdateBackingFile(*patch.path_on_host));
    }
    if (patch.rate_limiter) {
      RETURN_IF_ERROR(block->UpdateRateLimiter(patch.rate_limiter));
      drive->rate_limiter = block->rate_limiter().config();
    }
    return Ok();
  });
  // An update may replace a device's event sources (a new backing file, a new engine): watch
  // what the device has now.
  if (!vm_->paused()) {
    if (auto s = vm_->devices().Watch(loop_); !s.ok()) return ApiResponse::Fault(s.error().message());
  }
  if (!updated.ok()) return ApiResponse::Fault(updated.error().message());
  if (patch.path_on_host) drive->path_on_host = *patch.path_on_host;
  return ApiResponse::NoContent();
}

ApiResponse VmmController::Do(const PutNetworkInterface& put) {
  if (vm_) return ApiResponse::Fault(kNotAfterStart);
  if (auto s = InsertNetworkInterface(resources_.network_interfaces, put.config); !s.ok()) {
    return ApiResponse::Fault(s.error().message());
  }
  configured_ = true;
  return ApiResponse::NoContent();
}

ApiResponse VmmController::Do(const PatchNetworkInterface& patch) {
  if (!vm_) return ApiResponse::Fault(kNotBeforeStart);
  auto iface = std::find_if(resources_.network_interfaces.begin(), resources_.network_interfaces.end(),
                            [&](const NetworkInterfaceConfig& n) { return n.iface_id == patch.iface_id; });
  MmioDevices::Attached* attached = vm_->devices().Find(patch.iface_id);
  if (iface == resources_.network_interfaces.end() || attached == nullptr) {
    return ApiResponse::Fault("network interface '" + patch.iface_id + "': no such interface");
  }
  if (!vm_->paused()) vm_->devices().Unwatch(loop_);
  Status updated = attached->transport->With([&](MmioTransport& t) -> Status {
    auto* net = dynamic_cast<Net*>(&t.device());
    if (net == nullptr) return Error("'" + patch.iface_id + "' is not a network interface");
    RETURN_IF_ERROR(net->UpdateRateLimiters(patch.rx_rate_limiter, patch.tx_rate_limiter));
    // A PATCH changes only the buckets it names: keep what is now in force.
    iface->rx_rate_limiter = net->rx_rate_limiter().config();
    iface->tx_rate_limiter = net->tx_rate_limiter().config();
    return Ok();
  });
  // An update may replace a device's event sources (a new backing file, a new engine): watch
  // what the device has now.
  if (!vm_->paused()) {
    if (auto s = vm_->devices().Watch(loop_); !s.ok()) return ApiResponse::Fault(s.error().message());
  }
  if (!updated.ok()) return ApiResponse::Fault(updated.error().message());
  return ApiResponse::NoContent();
}

ApiResponse VmmController::Do(const PutVsock& put) {
  if (vm_) return ApiResponse::Fault(kNotAfterStart);
  resources_.vsock = put.config;
  configured_ = true;
  return ApiResponse::NoContent();
}

Status VmmController::ApplyLogger(const LoggerConfig& config) {
  LogLevel level = LogLevel::kInfo;
  if (config.level) {
    ASSIGN_OR_RETURN(level, ParseLogLevel(*config.level));
  }
  if (config.log_path) {
    RETURN_IF_ERROR(SetLogPath(*config.log_path));
  }
  SetLogLevel(level);
  SetLogDecorations(config.show_level, config.show_log_origin);
  resources_.logger = config;
  return Ok();
}

ApiResponse VmmController::Do(const PutLogger& put) {
  if (vm_) return ApiResponse::Fault(kNotAfterStart);
  if (auto s = ApplyLogger(put.config); !s.ok()) return ApiResponse::Fault("logger: " + s.error().message());
  return ApiResponse::NoContent();
}

Status VmmController::ApplyMetrics(const MetricsConfig& config) {
  if (metrics_) return Error("Reinitialization of metrics not allowed.");
  ASSIGN_OR_RETURN(metrics_, MetricsWriter::Create(config.metrics_path, loop_, [this] { return CollectMetrics(); }));
  resources_.metrics = config;
  return Ok();
}

ApiResponse VmmController::Do(const PutMetrics& put) {
  if (vm_) return ApiResponse::Fault(kNotAfterStart);
  if (auto s = ApplyMetrics(put.config); !s.ok()) return ApiResponse::Fault(s.error().message());
  return ApiResponse::NoContent();
}

Status VmmController::FlushMetrics() {
  if (!metrics_) return Error("the metrics system is not initialized (PUT /metrics first)");
  return metrics_->Flush();
}

Status VmmController::ConfigureFromFile(const VmResources& resources) {
  if (resources.logger) {
    if (auto s = ApplyLogger(*resources.logger); !s.ok()) return s.error().Wrap("logger");
  }
  if (resources.metrics) {
    if (auto s = ApplyMetrics(*resources.metrics); !s.ok()) return s.error().Wrap("metrics");
  }
  std::optional<MetricsConfig> metrics = resources_.metrics;
  resources_ = resources;
  if (!resources_.metrics) resources_.metrics = metrics;
  configured_ = resources.boot_source || !resources.drives.empty() || !resources.network_interfaces.empty() ||
                resources.vsock;
  return Ok();
}

Result<bool> VmmController::StartInstance(BuildStage* failed_stage) {
  if (vm_) return Error(kNotAfterStart);
  instance_start_us_ = MonotonicMicros();
  BuildError error{BuildStage::kHost, Error("")};
  auto vm = MicroVm::Create(resources_, options_.vm_options, &error);
  if (!vm) {
    if (failed_stage) *failed_stage = error.stage;
    return error.error;
  }
  if (auto s = vm->Start(loop_, on_vm_stopped_); !s.ok()) {
    if (failed_stage) *failed_stage = BuildStage::kHost;
    vm->Stop();
    return s.error();
  }
  vm_ = std::move(vm);
  LOG_INFO("microVM started " << (MonotonicMicros() - instance_start_us_) << " us after InstanceStart");
  return true;
}

ApiResponse VmmController::Do(const PutAction& put) {
  switch (put.type) {
    case InstanceActionType::kInstanceStart: {
      if (vm_) return ApiResponse::Fault(kNotAfterStart);
      auto started = StartInstance(nullptr);
      if (!started.ok()) return ApiResponse::Fault("Failed to start microVM: " + started.error().message());
      return ApiResponse::NoContent();
    }
    case InstanceActionType::kSendCtrlAltDel:
      if (!vm_) return ApiResponse::Fault(kNotBeforeStart);
      vm_->SendCtrlAltDel();
      return ApiResponse::NoContent();
    case InstanceActionType::kFlushMetrics:
      if (auto s = FlushMetrics(); !s.ok()) return ApiResponse::Fault(s.error().message());
      return ApiResponse::NoContent();
  }
  return ApiResponse::Fault("unknown action");
}

ApiResponse VmmController::Do(const PatchVmState& patch) {
  if (!vm_) return ApiResponse::Fault(kNotBeforeStart);
  Status s = patch.paused ? vm_->Pause() : vm_->Resume();
  if (!s.ok()) return ApiResponse::Fault(s.error().message());
  LOG_INFO("microVM " << (patch.paused ? "paused" : "resumed"));
  return ApiResponse::NoContent();
}

ApiResponse VmmController::Do(const CreateSnapshot& create) {
  if (!vm_) return ApiResponse::Fault(kNotBeforeStart);
  if (!vm_->paused()) return ApiResponse::Fault("Cannot create a snapshot: the microVM must be Paused first");
  if (auto s = vm_->SaveSnapshot(create); !s.ok()) {
    return ApiResponse::Fault("Cannot create a snapshot: " + s.error().message());
  }
  return ApiResponse::NoContent();
}

ApiResponse VmmController::Do(const LoadSnapshot& load) {
  if (vm_) return ApiResponse::Fault(kNotAfterStart);
  if (configured_) {
    return ApiResponse::Fault(
        "Loading a microVM snapshot not allowed after configuring boot-specific resources.");
  }
  instance_start_us_ = MonotonicMicros();
  auto restored = MicroVm::RestoreFromSnapshot(load, options_.vm_options);
  if (!restored.ok()) return ApiResponse::Fault("Cannot load the snapshot: " + restored.error().message());
  std::unique_ptr<MicroVm> vm = std::move(restored).value();
  if (auto s = vm->Start(loop_, on_vm_stopped_); !s.ok()) {
    vm->Stop();
    return ApiResponse::Fault("Cannot start the restored microVM: " + s.error().message());
  }
  vm_ = std::move(vm);
  // What GET /vm/config reports from now on: the restored VM's configuration (Firecracker
  // leaves boot-source empty after a restore).
  const VmResources& restored_resources = vm_->resources();
  resources_.machine = restored_resources.machine;
  resources_.drives = restored_resources.drives;
  resources_.network_interfaces = restored_resources.network_interfaces;
  resources_.vsock = restored_resources.vsock;
  resources_.boot_source.reset();
  configured_ = true;
  LOG_INFO("microVM restored from " << load.snapshot_path << " in " << (MonotonicMicros() - instance_start_us_)
                                    << " us" << (load.resume_vm ? " and resumed" : ", paused"));
  return ApiResponse::NoContent();
}

RunOutcome VmmController::StopVm() {
  if (!vm_) return RunOutcome{ExitKind::kVmmError, "the microVM was never started"};
  RunOutcome outcome = vm_->Stop();
  vm_.reset();
  return outcome;
}

void VmmController::RequestStop(const std::string& why) {
  if (vm_) vm_->RequestStop(ExitKind::kSignal, why);
}

std::string VmmController::CollectMetrics() const {
  json j;
  j["utc_timestamp_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  j["instance_id"] = options_.instance_id;
  j["state"] = StateName();
  json api = json::object();
  if (options_.api_metrics) {
    for (const auto& [name, s] : options_.api_metrics->Snapshot()) {
      api[name] = {{"count", s.count},
                   {"faults", s.faults},
                   {"latency_us_avg", s.count ? s.total_us / s.count : 0},
                   {"latency_us_max", s.max_us}};
    }
  }
  j["api_server"] = api;
  json vcpu = {{"io", 0}, {"mmio", 0}, {"hlt", 0}, {"shutdown", 0}, {"system_event", 0},
               {"internal_error", 0}, {"interrupted", 0}, {"other", 0}};
  json block = json::object();
  json net = json::object();
  if (vm_) {
    for (const auto& v : vm_->vcpus()) {
      const VcpuExitCounts& c = v->exit_counts();
      auto add = [&vcpu](const char* kind, const std::atomic<uint64_t>& count) {
        vcpu[kind] = vcpu[kind].get<uint64_t>() + count.load();
      };
      add("io", c.io);
      add("mmio", c.mmio);
      add("hlt", c.hlt);
      add("shutdown", c.shutdown);
      add("system_event", c.system_event);
      add("internal_error", c.internal_error);
      add("interrupted", c.interrupted);
      add("other", c.other);
    }
    for (const auto& a : vm_->devices().attached()) {
      a.transport->With([&](MmioTransport& t) {
        if (auto* b = dynamic_cast<Block*>(&t.device())) {
          const BlockMetrics& m = b->metrics();
          block[a.id] = {{"read_requests", m.read_requests},   {"read_bytes", m.read_bytes},
                         {"write_requests", m.write_requests}, {"write_bytes", m.write_bytes},
                         {"flush_requests", m.flush_requests}, {"io_errors", m.io_errors},
                         {"invalid_requests", m.invalid_requests},
                         {"unsupported_requests", m.unsupported_requests},
                         {"chain_errors", m.chain_errors},     {"interrupts", m.interrupts},
                         {"rate_limiter_throttled_events", m.rate_limiter_throttled_events}};
        } else if (auto* n = dynamic_cast<Net*>(&t.device())) {
          const NetMetrics m = n->metrics();
          net[a.id] = {{"rx_bytes", m.rx_bytes},     {"rx_frames", m.rx_frames},
                       {"rx_dropped", m.rx_dropped}, {"rx_errors", m.rx_errors},
                       {"tx_bytes", m.tx_bytes},     {"tx_frames", m.tx_frames},
                       {"tx_dropped", m.tx_dropped}, {"tx_errors", m.tx_errors},
                       {"malformed_chains", m.malformed_chains},
                       {"rx_rate_limiter_throttled_events", m.rx_rate_limiter_throttled_events},
                       {"tx_rate_limiter_throttled_events", m.tx_rate_limiter_throttled_events}};
        }
      });
    }
  }
  j["vcpu_exits"] = vcpu;
  j["block"] = block;
  j["net"] = net;
  json boot = json::object();
  if (vm_ && vm_->boot_signal_micros() != 0) {
    boot["boot_signal_since_process_start_us"] = vm_->boot_signal_micros() - ProcessStartMicros();
    if (instance_start_us_ != 0) {
      boot["boot_signal_since_instance_start_us"] = vm_->boot_signal_micros() - instance_start_us_;
    }
  }
  j["boot"] = boot;
  return j.dump();
}

}  // namespace hearth
