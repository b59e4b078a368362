// A vCPU thread: a KVM_RUN loop that sends port and MMIO exits to the buses and turns guest
// shutdown, reset, triple fault and KVM failures into an ExitRequest. Stopped from another
// thread by Kick(): a flag, immediate_exit, and a signal to break KVM_RUN.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "bus/bus.h"
#include "kvm/kvm.h"
#include "memory/guest_memory.h"
#include "vstate/exit_request.h"
#include "vstate/unhandled_access_log.h"

namespace hearth {

struct VcpuContext {
  const Bus* pio = nullptr;
  const Bus* mmio = nullptr;
  const GuestMemory* memory = nullptr;
  std::shared_ptr<ExitRequest> exit;
  std::shared_ptr<UnhandledAccessLog> unhandled;
  // Run first in the vCPU thread, before the guest runs (installs the thread's seccomp
  // filter); an error ends the VM.
  std::function<Status()> on_thread_start;
};

// vCPU exits by kind, for the metrics file. Written by the vCPU thread, read by any.
struct VcpuExitCounts {
  std::atomic<uint64_t> io{0};
  std::atomic<uint64_t> mmio{0};
  std::atomic<uint64_t> hlt{0};
  std::atomic<uint64_t> shutdown{0};
  std::atomic<uint64_t> system_event{0};
  std::atomic<uint64_t> internal_error{0};
  std::atomic<uint64_t> interrupted{0};
  std::atomic<uint64_t> other{0};
};

class Vcpu {
 public:
  // The signal that kicks a vCPU out of KVM_RUN. InstallKickHandler() once per process.
  static int KickSignal();
  static void InstallKickHandler();

  Vcpu(KvmVcpu kvm_vcpu, VcpuContext context)
      : kvm_vcpu_(std::move(kvm_vcpu)), ctx_(std::move(context)) {}
  ~Vcpu() { StopAndJoin(); }
  Vcpu(const Vcpu&) = delete;
  Vcpu& operator=(const Vcpu&) = delete;

  KvmVcpu& kvm_vcpu() { return kvm_vcpu_; }
  void Start();
  // Starts the thread parked, as after Pause(): it enters the guest only on Resume() (a VM
  // restored from a snapshot without resume_vm).
  void StartPaused();
  void Kick();
  void StopAndJoin();
  // Stops the vCPU outside KVM_RUN and returns once it is parked, with any I/O it was in the
  // middle of completed (KVM_RUN is entered once more with immediate_exit set), so its state
  // can be read. Fails if the vCPU thread has ended. Idempotent.
  Status Pause();
  // Lets a paused vCPU enter the guest again where it stopped.
  void Resume();
  bool paused() const;
  uint64_t exit_count() const { return exits_.load(std::memory_order_relaxed); }
  const VcpuExitCounts& exit_counts() const { return exit_counts_; }

 private:
  void RunLoop();
  // Parks the calling vCPU thread while a pause is requested. Returns false if asked to stop.
  bool ParkWhilePaused();
  void CountExit(uint32_t reason);
  // Returns false when the loop must end.
  bool HandleExit();
  bool HandleIo(kvm_run* run);
  void HandleMmio(kvm_run* run);
  bool HandleEmulationFailure(kvm_run* run);

  KvmVcpu kvm_vcpu_;
  VcpuContext ctx_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> pause_requested_{false};
  std::atomic<uint64_t> exits_{0};
  VcpuExitCounts exit_counts_;
  mutable std::mutex park_mu_;
  std::condition_variable park_cv_;
  bool parked_ = false;    // Guarded by park_mu_.
  bool finished_ = false;  // Guarded by park_mu_: the thread left RunLoop.
};

}  // namespace hearth
