// The vocabulary of the policy files (policy_vmm.cc, policy_vcpu.cc, policy_api.cc,
// policy_common.cc): each says which system calls a thread kind may make, with the argument
// values it may make them with. Everything not listed hits the default action.
#pragma once

#include <seccomp.h>

#include <initializer_list>
#include <string>

#include "base/result.h"
#include "seccomp/seccomp.h"

namespace hearth {

class SeccompPolicy {
 public:
  // `default_action` is SCMP_ACT_KILL_PROCESS or SCMP_ACT_LOG.
  static Result<SeccompPolicy> Create(uint32_t default_action);
  ~SeccompPolicy();
  SeccompPolicy(SeccompPolicy&& other) noexcept;
  SeccompPolicy(const SeccompPolicy&) = delete;
  SeccompPolicy& operator=(const SeccompPolicy&) = delete;
  SeccompPolicy& operator=(SeccompPolicy&&) = delete;

  // Allows `syscall` (SCMP_SYS(name)) with any arguments.
  void Allow(int syscall);
  // Allows `syscall` only when every comparison holds (SCMP_A0(SCMP_CMP_EQ, x), ...).
  void AllowIf(int syscall, std::initializer_list<scmp_arg_cmp> args);
  // Allows ioctl(fd, request, ...) for exactly this request number.
  void AllowIoctl(unsigned long request);
  // Makes `syscall` fail with `err` instead of running it (e.g. clone3 -> ENOSYS, so glibc
  // falls back to clone, whose flags a filter can see).
  void FailWith(int syscall, int err);

  // The BPF program, or the first error any rule above ran into.
  Result<BpfProgram> Compile() const;

 private:
  explicit SeccompPolicy(scmp_filter_ctx ctx) : ctx_(ctx) {}
  void Note(int rc, int syscall, const char* what);

  scmp_filter_ctx ctx_ = nullptr;
  std::string first_error_;
};

// The policy files: each adds its thread kind's rules.
void AddCommonRules(SeccompPolicy& p);  // every thread: memory, futex, exit, signals, logging
void AddVmmRules(SeccompPolicy& p);
void AddVcpuRules(SeccompPolicy& p);
void AddApiRules(SeccompPolicy& p);

}  // namespace hearth
