// The VMM thread's event loop: console input, queue notifications (ioeventfds), block I/O (sync
// and io_uring), tap I/O, timers (rate limiters), stop signals; then stopping the vCPUs and
// tearing the VM down.
#include <linux/if_tun.h>
#include <fcntl.h>
#include <sys/ioctl.h>

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
  // PATCH /drives with a new path_on_host (Block::UpdateBackingFile): open the new image (never
  // create or truncate a file), size it, and swap it into the io_uring's registered files.
  p.AllowIf(SCMP_SYS(openat), {SCMP_A2(SCMP_CMP_MASKED_EQ, O_CREAT | O_TRUNC, 0)});
  p.Allow(SCMP_SYS(io_uring_register));
  // Snapshots (in progress) will add here: KVM_GET_* state ioctls, KVM_GET_DIRTY_LOG, and for
  // userfaultfd-backed restore userfaultfd(2) plus UFFDIO_API/REGISTER/COPY/ZEROPAGE/WAKE.
}

}  // namespace hearth
