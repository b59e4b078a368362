// Rules every Hearth thread shares: memory management, locks, time, signals, logging, exit.
#include <errno.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "seccomp/policy.h"

namespace hearth {

void AddCommonRules(SeccompPolicy& p) {
  // Logging and console output (stderr, --log-path, the guest's serial on stdout) and
  // signalling eventfds (irqfds, the exit request, the API channel).
  p.Allow(SCMP_SYS(write));
  p.Allow(SCMP_SYS(writev));
  // stdio looks at a stream's fd once before its first write.
  p.Allow(SCMP_SYS(fstat));
  p.Allow(SCMP_SYS(newfstatat));
  // Dropping fds that a thread owns (RAII).
  p.Allow(SCMP_SYS(close));

  // The allocator. No new executable memory: mmap and mprotect only without PROT_EXEC.
  p.Allow(SCMP_SYS(brk));
  p.AllowIf(SCMP_SYS(mmap), {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)});
  p.AllowIf(SCMP_SYS(mprotect), {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)});
  p.Allow(SCMP_SYS(munmap));
  p.Allow(SCMP_SYS(mremap));
  p.Allow(SCMP_SYS(madvise));  // Also how glibc returns a finished thread's stack.

  // Mutexes and condition variables (devices are shared between vCPU and VMM threads).
  p.Allow(SCMP_SYS(futex));
  p.Allow(SCMP_SYS(sched_yield));

  // Time: the vDSO covers most calls; these are its fallbacks.
  p.Allow(SCMP_SYS(clock_gettime));
  p.Allow(SCMP_SYS(gettimeofday));
  p.Allow(SCMP_SYS(clock_nanosleep));
  p.Allow(SCMP_SYS(nanosleep));

  // Signals: the vCPU kick (SIGRTMIN) and the stop signals run handlers on any thread.
  p.Allow(SCMP_SYS(rt_sigreturn));
  p.Allow(SCMP_SYS(rt_sigprocmask));
  p.Allow(SCMP_SYS(restart_syscall));
  p.Allow(SCMP_SYS(getpid));
  p.Allow(SCMP_SYS(gettid));

  // No thread creates threads through clone3, whose flags sit in memory a filter cannot read:
  // ENOSYS makes glibc fall back to clone (allowed only where a policy says so).
  p.FailWith(SCMP_SYS(clone3), ENOSYS);

  // Threads name themselves ("fc_vcpu 0", as Firecracker's do) for ps and logs.
  p.AllowIf(SCMP_SYS(prctl), {SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME)});

  // Ending a thread or the process.
  p.Allow(SCMP_SYS(exit));
  p.Allow(SCMP_SYS(exit_group));
#ifdef HEARTH_SANITIZER_RUNTIME
  // ASan/TSan take down a thread's alternate signal stack at thread and process exit, and
  // probe whether memory is readable by writing it into a pipe (pthread_create's interceptor).
  p.Allow(SCMP_SYS(sigaltstack));
  p.Allow(SCMP_SYS(pipe2));
#endif
}

}  // namespace hearth
