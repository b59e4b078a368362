// The hearth binary's filters: on by default in every thread, off with --no-seccomp, a user's
// compiled filter with --seccomp-filter (a call it forbids kills the VMM), bad flags refused.
#include <seccomp.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <regex>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/jailer/spawn.h"
#include "tests/support/hearth_runner.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/vm_config.h"

namespace hearth::testing {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

// A filter file as seccomp_export_bpf writes it: allow everything except `killed` (if any).
std::string WriteFilter(const TempDir& dir, const std::string& name, int killed) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (killed >= 0) seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, killed, 0);
  std::string path = dir.Path(name);
  FILE* f = std::fopen(path.c_str(), "wb");
  seccomp_export_bpf(ctx, fileno(f));
  std::fclose(f);
  seccomp_release(ctx);
  return path;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// "Seccomp:" of every thread of `pid`, as "name=mode" strings, once the VMM thread has filtered.
// Polls until `threads` threads run, the vCPU threads have named themselves and (with
// `wait_for_filters`) every thread has its filter, or 20 s pass.
std::vector<std::string> ThreadSeccomp(pid_t pid, size_t threads, bool wait_for_filters) {
  const std::string proc = "/proc/" + std::to_string(pid);
  std::vector<std::string> out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    out.clear();
    size_t vcpus = 0, filtered = 0;
    std::error_code ec;
    for (const auto& t : fs::directory_iterator(proc + "/task", ec)) {
      std::string comm = Trim(ReadFile(t.path().string() + "/comm"));
      std::string status = ReadFile(t.path().string() + "/status");
      auto at = status.find("\nSeccomp:\t");
      std::string mode = at == std::string::npos ? "?" : status.substr(at + 10, 1);
      // KVM's own workers (kvm-nx-lpage-recovery) are kernel threads attached to the process.
      if (comm.rfind("kvm-", 0) == 0) continue;
      if (comm.rfind("fc_vcpu", 0) == 0) ++vcpus;
      if (mode == "2") ++filtered;
      out.push_back(comm + "=" + mode);
    }
    if (out.size() == threads && vcpus + 1 == threads && (!wait_for_filters || filtered == threads)) {
      return out;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return out;
}

TEST(HearthSeccomp, EveryThreadIsFilteredByDefault) {
  TempDir dir;
  dir.Write("vm.json", VmConfigJson(HEARTH_GUEST_ECHO).Vcpus(2).Str());
  Spawned vmm({HearthBinary(), "--no-api", "--config-file", dir.Path("vm.json")}, dir.Path("out"),
              dir.Path("err"));
  auto threads = ThreadSeccomp(vmm.pid(), 3, true);
  EXPECT_THAT(threads, ::testing::UnorderedElementsAre("hearth=2", "fc_vcpu 0=2", "fc_vcpu 1=2"))
      << ReadFile(dir.Path("err"));
  vmm.WriteStdin("filtered\n");
  int status = vmm.Wait(std::chrono::seconds(60));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFile(dir.Path("err"));
  EXPECT_EQ(ReadFile(dir.Path("out")), "echo: FILTERED\n");
}

TEST(HearthSeccomp, NoSeccompLeavesThreadsUnfiltered) {
  TempDir dir;
  dir.Write("vm.json", VmConfigJson(HEARTH_GUEST_ECHO).Str());
  Spawned vmm({HearthBinary(), "--no-api", "--config-file", dir.Path("vm.json"), "--no-seccomp"},
              dir.Path("out"), dir.Path("err"));
  auto threads = ThreadSeccomp(vmm.pid(), 2, false);
  EXPECT_THAT(threads, ::testing::UnorderedElementsAre("hearth=0", "fc_vcpu 0=0"));
  vmm.WriteStdin("x\n");
  EXPECT_NE(vmm.Wait(std::chrono::seconds(60)), -1);
}

TEST(HearthSeccomp, LogModeRunsTheGuest) {
  TempDir dir;
  ProcessResult r = RunHearth(dir, VmConfigJson(HEARTH_GUEST_HELLO), {"--seccomp-log"});
  EXPECT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("hello from tiny guest"));
}

TEST(HearthSeccomp, AForbiddenCallKillsTheVmm) {
  // A user's filter that forbids write(2): the vCPU thread's first serial output is fatal.
  TempDir dir;
  std::string filter = WriteFilter(dir, "no-write.bpf", SCMP_SYS(write));
  ProcessResult r = RunHearth(dir, VmConfigJson(HEARTH_GUEST_HELLO), {"--seccomp-filter", filter});
  EXPECT_EQ(r.term_signal, SIGSYS) << r.Describe();
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("hello from tiny guest")));
}

TEST(HearthSeccomp, UserFilterThatAllowsTheVmmRunsTheGuest) {
  TempDir dir;
  std::string filter = WriteFilter(dir, "no-socket.bpf", SCMP_SYS(socket));
  ProcessResult r = RunHearth(dir, VmConfigJson(HEARTH_GUEST_HELLO), {"--seccomp-filter", filter});
  EXPECT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("hello from tiny guest"));
}

TEST(HearthSeccomp, BadSeccompFlagsAreRefused) {
  TempDir dir;
  const VmConfigJson config(HEARTH_GUEST_HELLO);
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  dir.Write("short.bpf", "1234567");
  dir.Write("empty.bpf", "");
  std::vector<Case> cases = {
      {{"--no-seccomp", "--seccomp-log"}, "exclude each other"},
      {{"--no-seccomp", "--seccomp-filter", dir.Path("short.bpf")}, "exclude each other"},
      {{"--seccomp-filter", dir.Path("missing.bpf")}, "missing.bpf: No such file or directory"},
      {{"--seccomp-filter", dir.Path("short.bpf")}, "not a compiled seccomp filter (7 bytes"},
      {{"--seccomp-filter", dir.Path("empty.bpf")}, "not a compiled seccomp filter (0 bytes"},
      {{"--seccomp-filter"}, "--seccomp-filter needs a value"},
      {{"--seccomp-log=1"}, "--seccomp-log takes no value"},
      {{"--start-time-us", "soon"}, "not a number of microseconds"},
  };
  for (const auto& c : cases) {
    ProcessResult r = RunHearth(dir, config, c.args);
    EXPECT_TRUE(r.ExitedWith(154)) << c.message << "\n" << r.Describe();
    EXPECT_THAT(r.err, HasSubstr(c.message));
  }
  // Eight bytes of garbage are one BPF instruction the kernel refuses to load.
  dir.Write("garbage.bpf", std::string("\xff\xff\xff\xff\xff\xff\xff\xff", 8));
  ProcessResult r = RunHearth(dir, config, {"--seccomp-filter", dir.Path("garbage.bpf")});
  EXPECT_TRUE(r.ExitedWith(1)) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("seccomp(SECCOMP_SET_MODE_FILTER): Invalid argument"));
}

TEST(HearthSeccomp, StartTimeFromALauncherCountsInTheBootTimer) {
  // A start one second in the past (CLOCK_MONOTONIC) adds a second to Guest-boot-time.
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  uint64_t us = static_cast<uint64_t>(now.tv_sec) * 1000000 + now.tv_nsec / 1000 - 1000000;
  TempDir dir;
  ProcessResult r = RunHearth(dir, VmConfigJson(HEARTH_GUEST_HELLO),
                              {"--boot-timer", "--start-time-us", std::to_string(us),
                               "--start-time-cpu-us", "0"});
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.err, m, std::regex("Guest-boot-time = (\\d+) us"))) << r.err;
  EXPECT_GE(std::stoull(m[1]), 1000000u);
}

}  // namespace
}  // namespace hearth::testing
