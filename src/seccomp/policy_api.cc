// The API thread: cpp-httplib serving Firecracker's API on an AF_UNIX socket with one worker.
// Each request becomes an action queued for the VMM thread (a mutex-protected queue plus an
// eventfd write) and the thread waits on a condition variable for the reply.
#include <sched.h>
#include <sys/socket.h>
#include <fcntl.h>

#include "seccomp/policy.h"

namespace hearth {

void AddApiRules(SeccompPolicy& p) {
  // Serving connections: the listening socket exists before the filter; accept4 and the
  // per-connection reads, writes, waits and timeouts remain.
  p.Allow(SCMP_SYS(accept4));
  p.Allow(SCMP_SYS(accept));
  p.Allow(SCMP_SYS(read));
  p.Allow(SCMP_SYS(readv));
  p.Allow(SCMP_SYS(recvfrom));  // recv()
  p.Allow(SCMP_SYS(sendto));    // send()
  p.Allow(SCMP_SYS(recvmsg));
  p.Allow(SCMP_SYS(sendmsg));
  p.Allow(SCMP_SYS(poll));
  p.Allow(SCMP_SYS(ppoll));
  p.Allow(SCMP_SYS(select));
  p.Allow(SCMP_SYS(pselect6));
  p.Allow(SCMP_SYS(shutdown));
  p.AllowIf(SCMP_SYS(setsockopt), {SCMP_A1(SCMP_CMP_EQ, SOL_SOCKET)});  // SO_RCVTIMEO/SNDTIMEO
  p.Allow(SCMP_SYS(getsockopt));
  // The request's remote and local addresses (httplib fills them in for every connection).
  p.Allow(SCMP_SYS(getpeername));
  p.Allow(SCMP_SYS(getsockname));
  // Non-blocking mode on a connection (F_GETFL, F_SETFL) and nothing else of fcntl.
  p.AllowIf(SCMP_SYS(fcntl), {SCMP_A1(SCMP_CMP_EQ, F_GETFL)});
  p.AllowIf(SCMP_SYS(fcntl), {SCMP_A1(SCMP_CMP_EQ, F_SETFL)});
  // Reaching the VMM thread: eventfd writes are `write` (common rules).
  // httplib's worker pool: thread creation with the flags pthread_create uses (CLONE_THREAD
  // set), the new thread's set-up calls, and its pool size (hardware_concurrency).
  p.AllowIf(SCMP_SYS(clone), {SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)});
  p.Allow(SCMP_SYS(set_robust_list));
  p.Allow(SCMP_SYS(rseq));
  p.Allow(SCMP_SYS(sched_getaffinity));
  // glibc's first pthread_create in a process sets up its cancellation signal's handler.
  p.Allow(SCMP_SYS(rt_sigaction));
  // No ioctl at all.
}

}  // namespace hearth
