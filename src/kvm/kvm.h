// Typed wrappers for every KVM ioctl Hearth uses: one class per fd level (system, VM, vCPU),
// one method per ioctl, each error naming the ioctl. Nothing outside src/kvm calls ioctl on a
// KVM fd.
#pragma once

#include "kvm/kvm_uapi.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/fd.h"
#include "base/mmap.h"
#include "base/result.h"

namespace hearth {

class KvmVm;
class KvmVcpu;

class Kvm {
 public:
  static constexpr const char* kDefaultPath = "/dev/kvm";

  // Opens the device and checks the API version and every capability Hearth relies on.
  static Result<Kvm> Open(const std::string& path = kDefaultPath);

  Result<int> CheckExtension(long capability) const;
  Result<std::vector<kvm_cpuid_entry2>> GetSupportedCpuid() const;
  Result<KvmVm> CreateVm() const;
  const std::string& path() const { return path_; }

 private:
  Kvm(Fd fd, std::string path, size_t run_size) : fd_(std::move(fd)), path_(std::move(path)), run_size_(run_size) {}
  Fd fd_;
  std::string path_;
  size_t run_size_;
};

class KvmVm {
 public:
  Status SetUserMemoryRegion(uint32_t slot, uint64_t guest_addr, uint64_t size, void* host_addr);
  Status SetTssAddr(uint64_t addr);
  Status SetIdentityMapAddr(uint64_t addr);
  Status CreateIrqchip();
  Status CreatePit2();
  // Routes eventfd `fd` to interrupt line `gsi` (KVM_IRQFD).
  Status AssignIrqfd(int fd, uint32_t gsi);
  // Makes a guest write of `len` bytes at MMIO address `addr` (equal to `datamatch`) signal
  // eventfd `fd` in the kernel, without an exit to user space (KVM_IOEVENTFD).
  Status AssignIoeventfd(int fd, uint64_t addr, uint32_t len, uint64_t datamatch);
  Result<KvmVcpu> CreateVcpu(uint32_t id);

 private:
  friend class Kvm;
  KvmVm(Fd fd, size_t run_size) : fd_(std::move(fd)), run_size_(run_size) {}
  Fd fd_;
  size_t run_size_;
};

class KvmVcpu {
 public:
  // Enters the guest until the next exit. Returns false when interrupted by a signal (EINTR)
  // or by immediate_exit, true when kvm_run holds an exit to handle.
  Result<bool> Run();
  kvm_run* run_page() const { return reinterpret_cast<kvm_run*>(run_.data()); }
  void SetImmediateExit(bool on) { run_page()->immediate_exit = on ? 1 : 0; }
  uint32_t id() const { return id_; }

  Result<kvm_regs> GetRegs() const;
  Status SetRegs(const kvm_regs& regs);
  Result<kvm_sregs> GetSregs() const;
  Status SetSregs(const kvm_sregs& sregs);
  Status SetFpu(const kvm_fpu& fpu);
  Status SetMsrs(const std::vector<std::pair<uint32_t, uint64_t>>& msrs);
  Status SetCpuid2(const std::vector<kvm_cpuid_entry2>& entries);
  Result<kvm_lapic_state> GetLapic() const;
  Status SetLapic(const kvm_lapic_state& lapic);
  Result<kvm_vcpu_events> GetVcpuEvents() const;
  Status SetVcpuEvents(const kvm_vcpu_events& events);
  // Guest linear address to guest physical, through the vCPU's current page tables.
  Result<kvm_translation> Translate(uint64_t linear) const;
  Status SetMpState(uint32_t state);

 private:
  friend class KvmVm;
  KvmVcpu(Fd fd, MmapRegion run, uint32_t id) : fd_(std::move(fd)), run_(std::move(run)), id_(id) {}
  Fd fd_;
  MmapRegion run_;
  uint32_t id_;
};

}  // namespace hearth
