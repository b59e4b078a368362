// The VMM thread's event loop: console input, queue notifications (ioeventfds), block I/O (sync
// and io_uring), tap I/O, timers (rate limiters), stop signals; then stopping the vCPUs and
// tearing the VM down.
#include <linux/if_tun.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "kvm/kvm_uapi.h"
#include "seccomp/policy.h"

namespace hearth {

void AddVmmRules(SeccompPolicy& p) {
  // The event loop (epoll_create1 is not here: the loop exists before the filter).
  p.Allow(SCMP_SYS(epoll_wait));
  p.Allow(SCMP_SYS(epoll_pwait));
  p.Allow(SCMP_SYS(epoll_ctl));
  // eventfds (ioeventfds, irqfds, completions), console input, tap frames.
  p.Allow(SCMP_SYS(read));
  p.Allow(SCMP_SYS(readv));
  p.Allow(SCMP_SYS(eventfd2));
  // virtio-blk, Sync engine: requests on the disk image; Writeback's flush.
  p.Allow(SCMP_SYS(pread64));
  p.Allow(SCMP_SYS(pwrite64));
  p.Allow(SCMP_SYS(preadv));
  p.Allow(SCMP_SYS(pwritev));
  p.Allow(SCMP_SYS(fsync));
  p.Allow(SCMP_SYS(fdatasync));
  p.Allow(SCMP_SYS(lseek));
  // virtio-blk, Async engine: submitting to and reaping from the io_uring.
  p.Allow(SCMP_SYS(io_uring_enter));
  // Rate limiters' token-bucket timers.
  p.Allow(SCMP_SYS(timerfd_create));
  p.Allow(SCMP_SYS(timerfd_settime));
  p.Allow(SCMP_SYS(timerfd_gettime));
  // Stopping the vCPUs: the kick signal (pthread_kill).
  p.Allow(SCMP_SYS(tgkill));
  // virtio-net: the tap's offloads follow what the guest negotiated.
  p.AllowIoctl(TUNSETOFFLOAD);
  // The serial console: RawTerminal puts the host terminal back as it was (tcsetattr) and
  // isatty() asks for its attributes.
  p.AllowIoctl(TCGETS);
  p.AllowIoctl(TCSETS);
  // The API on this thread: a post-boot request that names a file (PATCH /drives) has the path
  // checked (access); at exit the API server is stopped (shutdown of its sockets) and its
  // socket file removed (unlink).
  p.Allow(SCMP_SYS(access));
  p.Allow(SCMP_SYS(shutdown));
  p.Allow(SCMP_SYS(unlink));
  // Files opened after boot: PATCH /drives with a new path_on_host (Block::UpdateBackingFile:
  // open the image, size it, swap it into the io_uring's registered files) and snapshot
  // creation (the memory and state files are written to a temporary name, synced, then renamed
  // over the final one; /dev/kvm is opened again for its MSR list). The jail is what bounds the
  // paths.
  p.Allow(SCMP_SYS(openat));
  p.Allow(SCMP_SYS(io_uring_register));
  p.Allow(SCMP_SYS(ftruncate));
  p.Allow(SCMP_SYS(fallocate));
  p.Allow(SCMP_SYS(rename));
  p.Allow(SCMP_SYS(renameat));
  p.Allow(SCMP_SYS(renameat2));
  p.Allow(SCMP_SYS(unlinkat));
  p.Allow(SCMP_SYS(fstatfs));
  p.Allow(SCMP_SYS(getdents64));
  // PUT /snapshot/create on a paused VM: every piece of KVM state, read on this thread while
  // the vCPU threads are parked outside KVM_RUN.
  for (unsigned long request : std::initializer_list<unsigned long>{
           KVM_GET_REGS, KVM_GET_SREGS, KVM_GET_FPU, KVM_GET_XSAVE, KVM_GET_XSAVE2, KVM_GET_XCRS,
        KVM_GET_DEBUGREGS, KVM_GET_MSRS, KVM_GET_LAPIC, KVM_GET_VCPU_EVENTS, KVM_GET_MP_STATE,
        KVM_GET_CPUID2,                                   // vCPU fds
        KVM_GET_IRQCHIP, KVM_GET_PIT2, KVM_GET_CLOCK,      // the VM fd
        KVM_GET_DIRTY_LOG,                                // Diff snapshots
        KVM_CHECK_EXTENSION,                              // XSAVE area size (VM fd)
        KVM_GET_MSR_INDEX_LIST, KVM_GET_MSR_FEATURE_INDEX_LIST,  // /dev/kvm: savable MSRs
        KVM_GET_API_VERSION, KVM_GET_VCPU_MMAP_SIZE}) {          // ... checked when it is opened
    p.AllowIoctl(request);
  }
  // virtio-vsock's host side, all on this thread's event loop: accepting host connections on
  // uds_path, connecting to <uds_path>_<port> for the guest (UNIX sockets only), and moving
  // bytes (recvfrom with MSG_PEEK reads a CONNECT line without consuming the data after it).
  p.AllowIf(SCMP_SYS(socket), {SCMP_A0(SCMP_CMP_EQ, AF_UNIX)});
  p.Allow(SCMP_SYS(connect));
  p.Allow(SCMP_SYS(accept4));
  p.Allow(SCMP_SYS(recvfrom));
  p.Allow(SCMP_SYS(recvmsg));
  p.Allow(SCMP_SYS(sendto));
  p.Allow(SCMP_SYS(sendmsg));
  p.Allow(SCMP_SYS(getsockopt));
}

}  // namespace hearth
