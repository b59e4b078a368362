#include "seccomp/seccomp.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <malloc.h>
#include <unistd.h>

#include <ctime>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/fd.h"
#include "seccomp/policy.h"

namespace hearth {

const char* SeccompThreadKindName(SeccompThreadKind kind) {
  switch (kind) {
    case SeccompThreadKind::kVmm:
      return "vmm";
    case SeccompThreadKind::kApi:
      return "api";
    case SeccompThreadKind::kVcpu:
      return "vcpu";
  }
  return "unknown";
}

Result<SeccompPolicy> SeccompPolicy::Create(uint32_t default_action) {
  scmp_filter_ctx ctx = seccomp_init(default_action);
  if (ctx == nullptr) return Error("seccomp_init failed");
  return SeccompPolicy(ctx);
}

SeccompPolicy::~SeccompPolicy() {
  if (ctx_ != nullptr) seccomp_release(ctx_);
}

SeccompPolicy::SeccompPolicy(SeccompPolicy&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)), first_error_(std::move(other.first_error_)) {}

void SeccompPolicy::Note(int rc, int syscall, const char* what) {
  if (rc == 0 || !first_error_.empty()) return;
  char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, syscall);
  first_error_ = std::string(what) + " for " + (name ? name : std::to_string(syscall)) + ": " +
                 std::strerror(-rc);
  free(name);
}

void SeccompPolicy::Allow(int syscall) {
  Note(seccomp_rule_add(ctx_, SCMP_ACT_ALLOW, syscall, 0), syscall, "seccomp_rule_add");
}

void SeccompPolicy::AllowIf(int syscall, std::initializer_list<scmp_arg_cmp> args) {
  Note(seccomp_rule_add_array(ctx_, SCMP_ACT_ALLOW, syscall, static_cast<unsigned>(args.size()),
                              args.begin()),
       syscall, "seccomp_rule_add");
}

void SeccompPolicy::AllowIoctl(unsigned long request) {
  // The kernel passes `request` as a 64-bit register; callers pass an unsigned long.
  AllowIf(SCMP_SYS(ioctl), {SCMP_A1(SCMP_CMP_EQ, request)});
}

void SeccompPolicy::FailWith(int syscall, int err) {
  Note(seccomp_rule_add(ctx_, SCMP_ACT_ERRNO(static_cast<uint32_t>(err)), syscall, 0), syscall,
       "seccomp_rule_add");
}

Result<BpfProgram> SeccompPolicy::Compile() const {
  if (!first_error_.empty()) return Error(first_error_);
  // libseccomp 2.5 exports only to an fd. A pipe, not a file or memfd: RLIMIT_FSIZE (the
  // jailer's fsize) does not apply to it, and a whole filter (at most BPF_MAXINSNS * 8 = 32 KiB)
  // fits in its 64 KiB buffer.
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC | O_NONBLOCK) != 0) return ErrnoError("pipe2");
  Fd read_end(ends[0]);
  Fd write_end(ends[1]);
  if (int rc = seccomp_export_bpf(ctx_, write_end.get()); rc != 0) {
    return ErrnoError("seccomp_export_bpf", -rc);
  }
  write_end.Reset();
  std::vector<uint8_t> bytes;
  uint8_t buf[4096];
  for (;;) {
    ssize_t n = ::read(read_end.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read the exported seccomp filter");
    if (n == 0) break;
    bytes.insert(bytes.end(), buf, buf + n);
  }
  if (bytes.empty() || bytes.size() % sizeof(sock_filter) != 0) {
    return Error("seccomp_export_bpf: " + std::to_string(bytes.size()) + " bytes is not a BPF program");
  }
  BpfProgram program(bytes.size() / sizeof(sock_filter));
  std::memcpy(program.data(), bytes.data(), bytes.size());
  return program;
}

Result<BpfProgram> CompileSeccompPolicy(SeccompThreadKind kind, SeccompMode mode) {
  if (mode == SeccompMode::kOff) return Error("seccomp is off: nothing to compile");
  ASSIGN_OR_RETURN(SeccompPolicy p, SeccompPolicy::Create(mode == SeccompMode::kLog
                                                              ? SCMP_ACT_LOG
                                                              : SCMP_ACT_KILL_PROCESS));
  AddCommonRules(p);
  switch (kind) {
    case SeccompThreadKind::kVmm:
      AddVmmRules(p);
      break;
    case SeccompThreadKind::kApi:
      AddApiRules(p);
      break;
    case SeccompThreadKind::kVcpu:
      AddVcpuRules(p);
      break;
  }
  auto program = p.Compile();
  if (!program.ok()) {
    return program.error().Wrap(std::string("seccomp policy ") + SeccompThreadKindName(kind));
  }
  return program;
}

Result<BpfProgram> LoadBpfFile(const std::string& path) {
  const std::string what = "--seccomp-filter " + path;
  auto fd = Fd::Open(path, O_RDONLY);
  if (!fd.ok()) return fd.error().Wrap(what);
  ASSIGN_OR_RETURN(uint64_t size, RegularFileSize(fd->get(), path));
  if (size == 0 || size % sizeof(sock_filter) != 0 || size / sizeof(sock_filter) > BPF_MAXINSNS) {
    return Error(what + ": not a compiled seccomp filter (" + std::to_string(size) +
                 " bytes; expected 1 to " + std::to_string(BPF_MAXINSNS) + " 8-byte BPF instructions)");
  }
  BpfProgram program(size / sizeof(sock_filter));
  RETURN_IF_ERROR(PreadExact(fd->get(), program.data(), size, 0, what));
  return program;
}

Status InstallBpfProgram(const BpfProgram& program) {
  if (program.empty() || program.size() > BPF_MAXINSNS) return Error("seccomp: empty or oversized filter");
  // Unprivileged filters need no_new_privs; it also stops a setuid exec regaining anything.
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return ErrnoError("prctl(PR_SET_NO_NEW_PRIVS)");
  sock_fprog prog{static_cast<unsigned short>(program.size()),
                  const_cast<sock_filter*>(program.data())};
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
    // The kernel validates the program: a user's malformed filter ends up here (EINVAL).
    return ErrnoError("seccomp(SECCOMP_SET_MODE_FILTER)");
  }
  return Ok();
}

// glibc reads files on first use of some functions; under a filter (or in a jail) it cannot, so
// that happens here, before any thread is filtered.
void PrepareLibcForFilters() {
  // The time zone, read by the log's first timestamp (gmtime_r/strftime run tzset once).
  ::tzset();
  // A new thread's first malloc picks an arena; without a fixed arena count glibc reads
  // /sys/devices/system/cpu/online to size the pool. Two arenas also keep the per-VM heap small.
  ::mallopt(M_ARENA_MAX, 2);
}

Result<std::shared_ptr<const SeccompFilters>> SeccompFilters::Build(const SeccompOptions& options) {
  std::shared_ptr<SeccompFilters> filters(new SeccompFilters());
  if (options.mode == SeccompMode::kOff) return std::shared_ptr<const SeccompFilters>(filters);
  filters->enabled_ = true;
  PrepareLibcForFilters();
  const SeccompMode mode = options.mode;
  if (options.filter_file) {
    ASSIGN_OR_RETURN(BpfProgram user, LoadBpfFile(*options.filter_file));
    filters->programs_.fill(user);
    return std::shared_ptr<const SeccompFilters>(filters);
  }
  for (auto kind : {SeccompThreadKind::kVmm, SeccompThreadKind::kApi, SeccompThreadKind::kVcpu}) {
    ASSIGN_OR_RETURN(filters->programs_[static_cast<size_t>(kind)],
                     CompileSeccompPolicy(kind, mode));
  }
  return std::shared_ptr<const SeccompFilters>(filters);
}

Status SeccompFilters::Install(SeccompThreadKind kind) const {
  if (!enabled_) return Ok();
  auto s = InstallBpfProgram(programs_[static_cast<size_t>(kind)]);
  if (!s.ok()) return s.error().Wrap(std::string("seccomp filter for the ") + SeccompThreadKindName(kind) + " thread");
  return Ok();
}

Status InstallSeccompFilter(SeccompThreadKind kind, const SeccompOptions& options) {
  ASSIGN_OR_RETURN(auto filters, SeccompFilters::Build(options));
  return filters->Install(kind);
}

}  // namespace hearth
