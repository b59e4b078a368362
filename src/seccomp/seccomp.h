// Seccomp filters for the VMM's threads: one policy per thread kind (policy_*.cc), compiled to
// BPF once at start-up with libseccomp and installed by each thread as its first act, before it
// handles anything from a guest or a client.
//
//   auto filters = SeccompFilters::Build(options);          // main(), before any thread starts
//   RETURN_IF_ERROR(filters->Install(SeccompThreadKind::kVcpu));   // first line of each thread
#pragma once

#include <linux/filter.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace hearth {

enum class SeccompThreadKind { kVmm, kApi, kVcpu };
const char* SeccompThreadKindName(SeccompThreadKind kind);

enum class SeccompMode {
  kOff,   // --no-seccomp: no filter at all.
  kKill,  // default: a system call outside the policy kills the whole process (SIGSYS).
  kLog,   // --seccomp-log: such a call is allowed and logged by the kernel (dmesg / audit).
};

struct SeccompOptions {
  SeccompMode mode = SeccompMode::kKill;
  // --seccomp-filter FILE: a user's compiled filter (an array of struct sock_filter, as
  // seccomp_export_bpf() writes it) installed on every thread instead of Hearth's policies.
  std::optional<std::string> filter_file;
};

// One compiled BPF program.
using BpfProgram = std::vector<sock_filter>;

// Compiles Hearth's policy for `kind` with libseccomp; `mode` kKill or kLog sets what happens to
// a call outside the policy.
Result<BpfProgram> CompileSeccompPolicy(SeccompThreadKind kind, SeccompMode mode);
// Reads a compiled filter file (whole sock_filter records, 1 to BPF_MAXINSNS of them).
Result<BpfProgram> LoadBpfFile(const std::string& path);
// Installs `program` on the calling thread only (sets no_new_privs first).
Status InstallBpfProgram(const BpfProgram& program);

// The filters of every thread kind, compiled once (about a millisecond) so that a thread only
// makes the two system calls that install its filter.
class SeccompFilters {
 public:
  static Result<std::shared_ptr<const SeccompFilters>> Build(const SeccompOptions& options);
  // Installs the filter for `kind` on the calling thread; does nothing with SeccompMode::kOff.
  Status Install(SeccompThreadKind kind) const;
  bool enabled() const { return enabled_; }

 private:
  SeccompFilters() = default;
  bool enabled_ = false;
  std::array<BpfProgram, 3> programs_;
};

// Compiles and installs the filter for `kind` on the calling thread in one step (for a thread
// whose owner holds no SeccompFilters; prefer SeccompFilters, which compiles only once).
Status InstallSeccompFilter(SeccompThreadKind kind, const SeccompOptions& options);

}  // namespace hearth
