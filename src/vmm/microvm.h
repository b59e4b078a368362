// A whole micro-VM built from VmResources: memory, KVM VM, kernel and boot data, legacy
// devices, vCPUs. Run() drives it on the calling thread (the VMM thread's event loop) until the
// guest stops or the VMM is told to stop, and reports why.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/event_loop.h"
#include "base/result.h"
#include "boot/cmdline.h"
#include "boot/kernel_loader.h"
#include "bus/bus.h"
#include "config/vm_resources.h"
#include "devices/i8042.h"
#include "devices/locked_device.h"
#include "devices/serial.h"
#include "kvm/kvm.h"
#include "api/api_action.h"
#include "vmm/host_kind.h"
#include "vstate/exit_request.h"
#include "vstate/vcpu.h"
#include "vstate/vm.h"
#include "vmm/mmio_devices.h"

namespace hearth {

struct MicroVmOptions {
  std::string kvm_path = Kvm::kDefaultPath;
  HostKind host_kind = HostKind::kHardware;
  bool boot_timer = false;
  int console_in = 0;   // stdin; -1 for none.
  int console_out = 1;  // stdout.
  int stop_event_fd = -1;  // Readable when the VMM must stop (signals); -1 for none.
  // Thread start hooks (seccomp): first thing in each vCPU thread; on the VMM thread once the
  // vCPU threads exist (so they do not inherit its filter) and before the event loop runs.
  std::function<Status()> on_vcpu_thread_start;
  std::function<Status()> on_event_loop_start;
};

// Which stage failed, so the CLI can tell a bad configuration from a failing host.
enum class BuildStage { kConfiguration, kHost };

struct BuildError {
  BuildStage stage;
  Error error;
};

struct RunOutcome {
  ExitKind kind;
  std::string message;
};

class MicroVm {
 public:
  static std::unique_ptr<MicroVm> Create(const VmResources& resources,
                                         const MicroVmOptions& options, BuildError* error);
  ~MicroVm();

  // Runs the VM on its own event loop on the calling thread until it stops (--no-api).
  Result<RunOutcome> Run();

  // Registers the VM's event sources on `loop` (the VMM thread's) and starts the vCPUs.
  // `on_stop` runs on that thread once the guest or a vCPU asked the VM to stop.
  Status Start(EventLoop& loop, std::function<void()> on_stop);
  // Stops the vCPUs and says why the VM stopped. After Start().
  RunOutcome Stop();
  // Asks the VM to stop from the VMM thread (e.g. a signal to the VMM).
  void RequestStop(ExitKind kind, std::string message) { exit_->Request(kind, std::move(message)); }

  // All vCPUs parked (each reported back) and devices no longer served, or the reverse.
  Status Pause();
  Status Resume();
  bool paused() const { return paused_; }
  void SendCtrlAltDel();

  const std::string& cmdline() const { return cmdline_; }
  const VmResources& resources() const { return resources_; }
  MmioDevices& devices() { return *virtio_; }
  const std::vector<std::unique_ptr<Vcpu>>& vcpus() const { return vcpus_; }
  uint64_t start_micros() const { return start_micros_; }
  // When the guest first wrote the boot-timer port (monotonic us), or 0.
  uint64_t boot_signal_micros() const { return boot_signal_us_->load(); }

  // --- Snapshots (microvm_snapshot.cc) ---
  // Parks every vCPU outside KVM_RUN (pending I/O completed) / lets them run again, from any
  // thread, without touching the event loop (tests drive Run() on another thread). The API
  // uses Pause()/Resume() on the VMM thread, which also stop serving devices.
  Status PauseVcpus();
  void ResumeVcpus();
  bool vcpus_paused() const;
  // Writes the memory file, then the state file (each atomically). Requires PauseVcpus().
  // Call on the VMM thread (or with its event loop idle): device state is read under each
  // device's lock.
  Status SaveSnapshot(const CreateSnapshot& params);
  // Builds a VM from a snapshot instead of a kernel: nothing is half-built on error. Its
  // vCPUs start parked (paused(), devices unwatched) unless params.resume_vm; Start() or
  // Run() drives it as usual and Resume() lets it go.
  static Result<std::unique_ptr<MicroVm>> RestoreFromSnapshot(const LoadSnapshot& params,
                                                             const MicroVmOptions& options);

 private:
  MicroVm() = default;
  Status BuildDevices();
  // Block and network devices from the configuration, announced on `cmdline`.
  Status BuildVirtioDevices(const VmResources& resources, Cmdline& cmdline, BuildStage* stage);
  Status BuildVcpus(const Kvm& kvm, uint32_t count, bool smt);
  Status WatchConsoleInput(EventLoop& loop);
  void OnConsoleInput(EventLoop& loop);

  MicroVmOptions options_;
  std::unique_ptr<Vm> vm_;
  LoadedKernel kernel_;
  std::string cmdline_;
  Bus pio_{"port I/O"};
  Bus mmio_{"MMIO"};
  std::shared_ptr<ExitRequest> exit_;
  std::shared_ptr<LockedDevice<Serial>> serial_;
  std::shared_ptr<LockedDevice<I8042>> i8042_;
  std::unique_ptr<EventFd> serial_rx_space_;
  std::unique_ptr<MmioDevices> virtio_;
  std::vector<std::unique_ptr<Vcpu>> vcpus_;
  bool console_eof_ = false;
  EventLoop* loop_ = nullptr;  // Set by Start().
  bool paused_ = false;
  uint64_t start_micros_ = 0;
  std::shared_ptr<std::atomic<uint64_t>> boot_signal_us_ = std::make_shared<std::atomic<uint64_t>>(0);
  VmResources resources_;      // What the VM was built from (saved in snapshots).
  bool start_paused_ = false;  // Run() starts the vCPUs parked (restored without resume_vm).
  Fd uffd_;                    // Uffd snapshot backend: the userfaultfd and the handler socket.
  Fd uffd_socket_;
};

}  // namespace hearth
