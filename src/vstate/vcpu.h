// A vCPU thread: a KVM_RUN loop that sends port and MMIO exits to the buses and turns guest
// shutdown, reset, triple fault and KVM failures into an ExitRequest. Stopped from another
// thread by Kick(): a flag, immediate_exit, and a signal to break KVM_RUN.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
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
  void Kick();
  void StopAndJoin();
  uint64_t exit_count() const { return exits_.load(std::memory_order_relaxed); }

 private:
  void RunLoop();
  // Returns false when the loop must end.
  bool HandleExit();
  bool HandleIo(kvm_run* run);
  void HandleMmio(kvm_run* run);
  bool HandleEmulationFailure(kvm_run* run);

  KvmVcpu kvm_vcpu_;
  VcpuContext ctx_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> exits_{0};
};

}  // namespace hearth
