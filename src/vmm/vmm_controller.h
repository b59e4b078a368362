// The VMM thread's side of the API: owns the VM's configuration before boot and the MicroVm
// after, applies Firecracker's pre-boot / post-boot rules, and executes each ApiAction. Runs
// only on the VMM thread (its event loop calls Handle()), so it needs no locks.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "api/api_action.h"
#include "api/api_metrics.h"
#include "base/event_loop.h"
#include "config/vm_resources.h"
#include "vmm/metrics_writer.h"
#include "vmm/microvm.h"

namespace hearth {

struct ControllerOptions {
  std::string instance_id = "anonymous-instance";
  MicroVmOptions vm_options;
  const ApiMetrics* api_metrics = nullptr;  // May be null (no API).
};

class VmmController {
 public:
  // `on_vm_stopped` runs on the VMM thread when the guest (or a vCPU failure) stopped the VM:
  // the process then ends, as Firecracker's does.
  VmmController(ControllerOptions options, EventLoop& loop, std::function<void()> on_vm_stopped);
  ~VmmController();

  ApiResponse Handle(const ApiAction& action);

  // --config-file: takes every resource of the file, as if PUT one by one, then starts. The
  // error says which kind of failure (configuration or host) it was.
  Status ConfigureFromFile(const VmResources& resources);
  Result<bool> StartInstance(BuildStage* failed_stage);

  bool started() const { return vm_ != nullptr; }
  // Once on_vm_stopped ran: why. Stops the vCPUs.
  RunOutcome StopVm();
  // A signal asked the VMM to stop.
  void RequestStop(const std::string& why);

  // Flushes the metrics file if one is configured (also at exit).
  Status FlushMetrics();

 private:
  ApiResponse Do(const GetInstanceInfo&);
  ApiResponse Do(const GetVersion&);
  ApiResponse Do(const GetMachineConfig&);
  ApiResponse Do(const GetVmConfig&);
  ApiResponse Do(const PutBootSource&);
  ApiResponse Do(const PutMachineConfig&);
  ApiResponse Do(const PatchMachineConfig&);
  ApiResponse Do(const PutDrive&);
  ApiResponse Do(const PatchDrive&);
  ApiResponse Do(const PutNetworkInterface&);
  ApiResponse Do(const PatchNetworkInterface&);
  ApiResponse Do(const PutVsock&);
  ApiResponse Do(const PutLogger&);
  ApiResponse Do(const PutMetrics&);
  ApiResponse Do(const PutAction&);
  ApiResponse Do(const PatchVmState&);
  ApiResponse Do(const CreateSnapshot&);
  ApiResponse Do(const LoadSnapshot&);

  Status ApplyLogger(const LoggerConfig& config);
  Status ApplyMetrics(const MetricsConfig& config);
  std::string CollectMetrics() const;
  const char* StateName() const;

  ControllerOptions options_;
  EventLoop& loop_;
  std::function<void()> on_vm_stopped_;
  VmResources resources_;
  // Anything other than the logger and metrics configured: /snapshot/load is refused then.
  bool configured_ = false;
  std::unique_ptr<MicroVm> vm_;
  std::unique_ptr<MetricsWriter> metrics_;
  uint64_t instance_start_us_ = 0;
};

}  // namespace hearth
