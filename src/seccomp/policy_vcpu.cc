// The vCPU threads: KVM_RUN, and the port/MMIO exits they serve (devices' registers, which can
// activate or reset a virtio device).
#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include "kvm/kvm_uapi.h"
#include "seccomp/policy.h"

namespace hearth {

void AddVcpuRules(SeccompPolicy& p) {
  // Entering the guest.
  p.AllowIoctl(KVM_RUN);
  // An instruction KVM cannot emulate (Vcpu::HandleEmulationFailure): read the registers, find
  // the instruction's bytes, and for int3/fwait step past it and inject #BP.
  p.AllowIoctl(KVM_GET_REGS);
  p.AllowIoctl(KVM_GET_SREGS);
  p.AllowIoctl(KVM_TRANSLATE);
  p.AllowIoctl(KVM_SET_REGS);
  p.AllowIoctl(KVM_GET_VCPU_EVENTS);
  p.AllowIoctl(KVM_SET_VCPU_EVENTS);
  // A guest's DRIVER_OK or reset of virtio-net sets the tap's offloads (Net::Activate / Reset).
  p.AllowIoctl(TUNSETOFFLOAD);
  // A guest's reset of an io_uring virtio-blk waits for the requests in flight.
  p.Allow(SCMP_SYS(io_uring_enter));
  // A guest's device reset consumes the device's eventfds (completions, notifications).
  p.Allow(SCMP_SYS(read));
  // Kicking another vCPU or the VMM thread (pthread_kill).
  p.Allow(SCMP_SYS(tgkill));
}

}  // namespace hearth
