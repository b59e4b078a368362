// Each thread kind's policy, installed in a forked child: the calls that thread makes pass, and
// anything else kills the child with SIGSYS (or, in log mode, is let through).
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kvm/kvm_uapi.h"
#include "seccomp/seccomp.h"

namespace hearth {
namespace {

using ::testing::KilledBySignal;
using ::testing::ExitedWithCode;

class SeccompPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// Installs `kind`'s filter (kill mode) or exits 100.
void Install(SeccompThreadKind kind, SeccompMode mode = SeccompMode::kKill) {
  SeccompOptions options;
  options.mode = mode;
  if (!InstallSeccompFilter(kind, options).ok()) _exit(100);
}

// Exits 0 when `call` fails with `err` (an allowed call on a bad fd), 1 otherwise.
void ExpectErrno(long ret, int err) { _exit(ret == -1 && errno == err ? 0 : 1); }

TEST_F(SeccompPolicyTest, EveryKindCompilesInKillAndLogMode) {
  for (auto kind : {SeccompThreadKind::kVmm, SeccompThreadKind::kApi, SeccompThreadKind::kVcpu}) {
    for (auto mode : {SeccompMode::kKill, SeccompMode::kLog}) {
      auto program = CompileSeccompPolicy(kind, mode);
      ASSERT_TRUE(program.ok()) << SeccompThreadKindName(kind) << ": " << program.error().message();
      EXPECT_GT(program->size(), 20u);
      EXPECT_LE(program->size(), static_cast<size_t>(BPF_MAXINSNS));
    }
  }
  EXPECT_FALSE(CompileSeccompPolicy(SeccompThreadKind::kVmm, SeccompMode::kOff).ok());
}

TEST_F(SeccompPolicyTest, VcpuMayRunTheGuestAndWrite) {
  EXPECT_EXIT(({
                Install(SeccompThreadKind::kVcpu);
                ExpectErrno(::ioctl(-1, KVM_RUN, 0), EBADF);
              }),
              ExitedWithCode(0), "");
  EXPECT_EXIT(({
                Install(SeccompThreadKind::kVcpu);
                ExpectErrno(::ioctl(-1, TUNSETOFFLOAD, 0), EBADF);
              }),
              ExitedWithCode(0), "");
  EXPECT_EXIT(({
                Install(SeccompThreadKind::kVcpu);
                _exit(::write(STDERR_FILENO, "", 0) == 0 ? 0 : 1);
              }),
              ExitedWithCode(0), "");
}

TEST_F(SeccompPolicyTest, VcpuIsKilledByOtherIoctlsAndCalls) {
  // A KVM ioctl the vCPU thread never makes.
  EXPECT_EXIT(({
                Install(SeccompThreadKind::kVcpu);
                (void)::ioctl(-1, KVM_CREATE_VM, 0);
                _exit(0);
              }),
              KilledBySignal(SIGSYS), "");
  EXPECT_EXIT(({
                Install(SeccompThreadKind::kVcpu);
                (void)::openat(AT_FDCWD, "/etc/hostname", O_RDONLY);
                _exit(0);
              }),
              KilledBySignal(SIGSYS), "");
  EXPECT_EXIT(({
                Install(SeccompThreadKind::kVcpu);
                (void)::socket(AF_INET, SOCK_STREAM, 0);
                _exit(0);
              }),
              KilledBySignal(SIGSYS), "");
  // The vCPU thread does no block I/O of its own.
  EXPECT_EXIT(({
                Install(SeccompThreadKind::kVcpu);
                char b;
                (void)::pread(-1, &b, 1, 0);
                _exit(0);
              }),
              KilledBySignal(SIGSYS), "");
}

TEST_F(SeccompPolicyTest, VmmMayDoDeviceIoButNotExecOrMapCode) {
  EXPECT_EXIT(({
                Install(SeccompThreadKind::kVmm);
                char b;
                if (::pread(-1, &b, 1, 0) != -1) _exit(2);
                void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (p == MAP_FAILED) _exit(3);
                ExpectErrno(::ioctl(-1, TCSETS, 0), EBADF);
              }),
              ExitedWithCode(0), "");
  EXPECT_EXIT(({
                Install(SeccompThreadKind::kVmm);
                (void)::mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                _exit(0);
              }),
              KilledBySignal(SIGSYS), "");
  EXPECT_EXIT(({
                Install(SeccompThreadKind::kVmm);
                char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
                ::execv("/bin/true", argv);
                _exit(0);
              }),
              KilledBySignal(SIGSYS), "");
  EXPECT_EXIT(({
                Install(SeccompThreadKind::kVmm);
                (void)::ioctl(-1, KVM_RUN, 0);  // Only vCPU threads enter the guest.
                _exit(0);
              }),
              KilledBySignal(SIGSYS), "");
  EXPECT_EXIT(({
                Install(SeccompThreadKind::kVmm);
                (void)::fork();
                _exit(0);
              }),
              KilledBySignal(SIGSYS), "");
}

TEST_F(SeccompPolicyTest, ApiServesConnectionsAndStartsThreadsButOpensNothing) {
  EXPECT_EXIT(({
                Install(SeccompThreadKind::kApi);
                if (::accept4(-1, nullptr, nullptr, SOCK_CLOEXEC) != -1 || errno != EBADF) _exit(2);
                // pthread_create: clone3 fails with ENOSYS, glibc falls back to clone.
                std::thread t([] {});
                t.join();
                _exit(0);
              }),
              ExitedWithCode(0), "");
  EXPECT_EXIT(({
                Install(SeccompThreadKind::kApi);
                (void)::socket(AF_UNIX, SOCK_STREAM, 0);
                _exit(0);
              }),
              KilledBySignal(SIGSYS), "");
  EXPECT_EXIT(({
                Install(SeccompThreadKind::kApi);
                (void)::ioctl(-1, KVM_RUN, 0);
                _exit(0);
              }),
              KilledBySignal(SIGSYS), "");
  EXPECT_EXIT(({
                Install(SeccompThreadKind::kApi);
                (void)::fork();  // clone without CLONE_THREAD
                _exit(0);
              }),
              KilledBySignal(SIGSYS), "");
}

TEST_F(SeccompPolicyTest, LogModeLetsForbiddenCallsThrough) {
  EXPECT_EXIT(({
                Install(SeccompThreadKind::kVcpu, SeccompMode::kLog);
                (void)::socket(AF_INET, SOCK_STREAM, 0);
                _exit(0);
              }),
              ExitedWithCode(0), "");
}

TEST_F(SeccompPolicyTest, OffInstallsNothing) {
  EXPECT_EXIT(({
                Install(SeccompThreadKind::kVcpu, SeccompMode::kOff);
                (void)::socket(AF_INET, SOCK_STREAM, 0);
                _exit(0);
              }),
              ExitedWithCode(0), "");
}

}  // namespace
}  // namespace hearth
