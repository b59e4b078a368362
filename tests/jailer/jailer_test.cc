// hearth-jailer, as root: the jailed VMM boots tiny guests, and each wall of the jail (root,
// uid/gid, cgroups, network and PID namespaces, rlimits) is checked from the host via /proc
// while the VMM runs (the echo guest waits for a line on its serial input).

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/jailer/jail_libraries.h"
#include "tests/jailer/spawn.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace hearth::testing {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

constexpr uid_t kUid = 12345;
constexpr gid_t kGid = 12346;
constexpr auto kTimeout = std::chrono::seconds(60);

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// "Uid:\t12345\t12345\t..." -> the line's value fields.
std::string StatusLine(pid_t pid, const std::string& key) {
  std::istringstream in(ReadFile("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
  }
  return "";
}

// Waits until the VMM (after exec) has its vCPU thread, i.e. the guest runs.
bool HasVcpuThread(pid_t pid) {
  std::error_code ec;
  for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    if (Trim(ReadFile(t.path().string() + "/comm")) == "fc_vcpu 0") return true;
  }
  return false;
}

bool WaitForVcpuThread(pid_t pid) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (HasVcpuThread(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// A jail base directory with a prepared root for `id`: the guest and its vm.json, which the
// VMM reads through paths inside the jail.
class Jail {
 public:
  Jail(const std::string& id, const std::string& guest, const std::string& extra_config = "")
      : id_(id) {
    root_ = base_.path() + "/hearth/" + id + "/root";
    fs::create_directories(root_);
    fs::copy_file(guest, root_ + "/guest.elf");
    std::ofstream(root_ + "/vm.json")
        << R"({"boot-source": {"kernel_image_path": "/guest.elf"},)"
        << R"( "machine-config": {"vcpu_count": 1, "mem_size_mib": 32})" << extra_config << "}";
    fs::permissions(root_ + "/guest.elf", fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
    // The operator's part of the host setup for a dynamically linked hearth.
    if (!PutLibrariesInJail(HearthBinary(), root_)) ADD_FAILURE() << "cannot put hearth's libraries in the jail";
  }
  ~Jail() {
    for (const char* h : {"cpu", "pids"}) {
      ::rmdir(("/sys/fs/cgroup/" + std::string(h) + "/hearth-test/" + id_).c_str());
    }
    ::rmdir(("/sys/fs/cgroup/unified/hearth-test/" + id_).c_str());
  }

  const std::string& base() const { return base_.path(); }
  const std::string& root() const { return root_; }
  std::vector<std::string> Argv(const std::vector<std::string>& jailer_extra,
                                const std::vector<std::string>& vmm_extra = {}) const {
    std::vector<std::string> argv = {HEARTH_JAILER_BINARY, "--id", id_, "--exec-file",
                                     HearthBinary(), "--uid", std::to_string(kUid), "--gid",
                                     std::to_string(kGid), "--chroot-base-dir", base_.path()};
    argv.insert(argv.end(), jailer_extra.begin(), jailer_extra.end());
    argv.insert(argv.end(), {"--", "--no-api", "--config-file", "/vm.json"});
    argv.insert(argv.end(), vmm_extra.begin(), vmm_extra.end());
    return argv;
  }

 private:
  std::string id_;
  TempDir base_;
  std::string root_;
};

TEST(Jailer, BootsTinyGuestFromPathsInsideTheJail) {
  Jail jail("boot-1", HEARTH_GUEST_HELLO);
  ProcessResult r = RunProcess(jail.Argv({}), kTimeout);
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("hello from tiny guest"));
  // The id reaches the VMM (its log lines carry it).
  EXPECT_THAT(r.err, HasSubstr("[boot-1:"));
  // The jail: the VMM binary and device nodes owned by uid:gid.
  EXPECT_TRUE(Exists(jail.root() + "/hearth"));
  struct stat st {};
  ASSERT_EQ(::stat((jail.root() + "/dev/kvm").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_uid, kUid);
  EXPECT_EQ(st.st_gid, kGid);
  for (const char* dev : {"/dev/net/tun", "/dev/urandom", "/dev/userfaultfd"}) {
    EXPECT_TRUE(Exists(jail.root() + dev)) << dev;
  }
  ASSERT_EQ(::stat(jail.root().c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kUid);
}

TEST(Jailer, HostPathsAreOutsideTheJail) {
  // /etc/hostname exists on the host; inside the jail it does not.
  ASSERT_TRUE(Exists("/etc/hostname"));
  Jail jail("root-1", HEARTH_GUEST_HELLO);
  std::ofstream(jail.root() + "/vm.json")
      << R"({"boot-source": {"kernel_image_path": "/etc/hostname"},)"
      << R"( "machine-config": {"vcpu_count": 1, "mem_size_mib": 32}})";
  ProcessResult r = RunProcess(jail.Argv({}), kTimeout);
  EXPECT_TRUE(r.ExitedWith(153)) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("/etc/hostname: No such file or directory"));
}

TEST(Jailer, RunsAsUidGidInItsRootCgroupAndLimits) {
  Jail jail("walls-1", HEARTH_GUEST_ECHO);
  Spawned vmm(jail.Argv({"--parent-cgroup", "hearth-test", "--cgroup", "cpu.shares=512",
                         "--cgroup", "pids.max=100", "--resource-limit", "no-file=64",
                         "--resource-limit", "fsize=1048576"}),
              jail.base() + "/out", jail.base() + "/err");
  ASSERT_TRUE(WaitForVcpuThread(vmm.pid())) << ReadFile(jail.base() + "/err");
  const std::string proc = "/proc/" + std::to_string(vmm.pid());
  // No fork: the jailer became the VMM.
  EXPECT_EQ(Trim(ReadFile(proc + "/comm")), "hearth");
  EXPECT_EQ(StatusLine(vmm.pid(), "Uid"), "\t12345\t12345\t12345\t12345");
  EXPECT_EQ(StatusLine(vmm.pid(), "Gid"), "\t12346\t12346\t12346\t12346");
  EXPECT_EQ(Trim(StatusLine(vmm.pid(), "Groups")), "\t");
  EXPECT_EQ(StatusLine(vmm.pid(), "CapEff"), "\t0000000000000000");
  EXPECT_EQ(Trim(StatusLine(vmm.pid(), "Seccomp")), "\t2");
  // Its root is the jail.
  EXPECT_TRUE(Exists(proc + "/root/vm.json"));
  EXPECT_TRUE(Exists(proc + "/root/dev/kvm"));
  EXPECT_FALSE(Exists(proc + "/root/etc/hostname"));
  EXPECT_FALSE(Exists(proc + "/root/old_root"));
  // Its environment is empty.
  EXPECT_EQ(ReadFile(proc + "/environ"), "");
  // cgroups (v1): in <parent>/<id> of each hierarchy, with the values written.
  std::string cgroups = ReadFile(proc + "/cgroup");
  EXPECT_THAT(cgroups, HasSubstr(":cpu:/hearth-test/walls-1\n"));
  EXPECT_THAT(cgroups, HasSubstr(":pids:/hearth-test/walls-1\n"));
  EXPECT_EQ(Trim(ReadFile("/sys/fs/cgroup/cpu/hearth-test/walls-1/cpu.shares")), "512");
  EXPECT_EQ(Trim(ReadFile("/sys/fs/cgroup/pids/hearth-test/walls-1/pids.max")), "100");
  // rlimits.
  std::string limits = ReadFile(proc + "/limits");
  EXPECT_THAT(limits, ::testing::ContainsRegex("Max open files +64 +64"));
  EXPECT_THAT(limits, ::testing::ContainsRegex("Max file size +1048576 +1048576"));

  vmm.WriteStdin("walls\n");
  int status = vmm.Wait(kTimeout);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << ReadFile(jail.base() + "/err");
  EXPECT_EQ(ReadFile(jail.base() + "/out"), "echo: WALLS\n");
}

TEST(Jailer, CgroupV2WhereTheHostHasIt) {
  if (!Exists("/sys/fs/cgroup/unified/cgroup.controllers") &&
      !Exists("/sys/fs/cgroup/cgroup.controllers")) {
    GTEST_SKIP() << "no cgroup v2 hierarchy on this host";
  }
  Jail jail("v2-1", HEARTH_GUEST_ECHO);
  Spawned vmm(jail.Argv({"--cgroup-version", "2", "--parent-cgroup", "hearth-test", "--cgroup",
                         "cgroup.max.descendants=3", "--cgroup", "cgroup.max.depth=2"}),
              jail.base() + "/out", jail.base() + "/err");
  ASSERT_TRUE(WaitForVcpuThread(vmm.pid())) << ReadFile(jail.base() + "/err");
  std::string mount = Exists("/sys/fs/cgroup/unified/cgroup.controllers") ? "/sys/fs/cgroup/unified"
                                                                         : "/sys/fs/cgroup";
  EXPECT_THAT(ReadFile("/proc/" + std::to_string(vmm.pid()) + "/cgroup"),
              HasSubstr("0::/hearth-test/v2-1\n"));
  EXPECT_EQ(Trim(ReadFile(mount + "/hearth-test/v2-1/cgroup.max.descendants")), "3");
  EXPECT_EQ(Trim(ReadFile(mount + "/hearth-test/v2-1/cgroup.max.depth")), "2");
  vmm.WriteStdin("v2\n");
  int status = vmm.Wait(kTimeout);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFile(jail.base() + "/err");
}

// A network namespace with a tap the jailed uid may attach to.
class NetNs {
 public:
  explicit NetNs(std::string name) : name_(std::move(name)) {
    RunProcess({"ip", "netns", "del", name_}, kTimeout);
    ok_ = RunProcess({"ip", "netns", "add", name_}, kTimeout).ExitedWith(0) &&
          RunProcess({"ip", "-n", name_, "tuntap", "add", "dev", "jtap0", "mode", "tap", "user",
                      std::to_string(kUid), "group", std::to_string(kGid)},
                     kTimeout).ExitedWith(0);
  }
  ~NetNs() { RunProcess({"ip", "netns", "del", name_}, kTimeout); }
  bool ok() const { return ok_; }
  std::string path() const { return "/var/run/netns/" + name_; }

 private:
  std::string name_;
  bool ok_ = false;
};

TEST(Jailer, JoinsTheNetworkNamespaceWhereTheGuestsTapLives) {
  NetNs ns("hearth-jail-" + std::to_string(::getpid()));
  ASSERT_TRUE(ns.ok());
  // jtap0 exists only in the namespace: the VMM opens it only if it is in there.
  Jail jail("net-1", HEARTH_GUEST_ECHO,
            R"(, "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "jtap0"}])");
  Spawned vmm(jail.Argv({"--netns", ns.path()}), jail.base() + "/out", jail.base() + "/err");
  ASSERT_TRUE(WaitForVcpuThread(vmm.pid())) << ReadFile(jail.base() + "/err");
  struct stat in_vmm {}, wanted {};
  ASSERT_EQ(::stat(("/proc/" + std::to_string(vmm.pid()) + "/ns/net").c_str(), &in_vmm), 0);
  ASSERT_EQ(::stat(ns.path().c_str(), &wanted), 0);
  EXPECT_EQ(in_vmm.st_ino, wanted.st_ino);
  vmm.WriteStdin("net\n");
  int status = vmm.Wait(kTimeout);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFile(jail.base() + "/err");
  EXPECT_EQ(ReadFile(jail.base() + "/out"), "echo: NET\n");

  // Without --netns the tap is not there.
  Jail outside("net-2", HEARTH_GUEST_HELLO,
               R"(, "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "jtap0"}])");
  ProcessResult r = RunProcess(outside.Argv({}), kTimeout);
  EXPECT_FALSE(r.ExitedWith(0)) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("jtap0"));
}

TEST(Jailer, NewPidNamespaceMakesTheVmmPidOne) {
  Jail jail("pidns-1", HEARTH_GUEST_ECHO);
  Spawned jailer(jail.Argv({"--new-pid-ns"}), jail.base() + "/out", jail.base() + "/err");
  // The jailer leaves once the VMM runs, having written the VMM's host pid.
  int status = jailer.Wait(kTimeout);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFile(jail.base() + "/err");
  std::string pid_text = Trim(ReadFile(jail.root() + "/hearth.pid"));
  ASSERT_FALSE(pid_text.empty());
  pid_t pid = std::stoi(pid_text);
  ASSERT_TRUE(WaitForVcpuThread(pid)) << ReadFile(jail.base() + "/err");
  // NSpid: the host pid, then 1 in its own namespace.
  EXPECT_EQ(StatusLine(pid, "NSpid"), "\t" + pid_text + "\t1");
  ::kill(pid, SIGTERM);
  EXPECT_TRUE(WaitForPidGone(pid, kTimeout));
  EXPECT_TRUE(WaitForFileContains(jail.base() + "/err", "asked to stop by a signal", kTimeout))
      << ReadFile(jail.base() + "/err");
}

TEST(Jailer, DaemonizeDetachesIntoANewSession) {
  Jail jail("daemon-1", HEARTH_GUEST_ECHO);
  Spawned jailer(jail.Argv({"--daemonize", "--parent-cgroup", "hearth-test", "--cgroup",
                            "pids.max=50"}),
                 jail.base() + "/out", jail.base() + "/err");
  int status = jailer.Wait(kTimeout);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFile(jail.base() + "/err");
  // The daemon is found through its cgroup. The jailer's short-lived umount helper can share the
  // cgroup for a moment (it waits out an RCU grace period), so the VMM is the member that runs a
  // vCPU thread, not simply the first line.
  pid_t pid = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (pid == 0 && std::chrono::steady_clock::now() < deadline) {
    std::istringstream procs(ReadFile("/sys/fs/cgroup/pids/hearth-test/daemon-1/cgroup.procs"));
    for (std::string line; pid == 0 && std::getline(procs, line);) {
      if (!line.empty() && HasVcpuThread(std::stoi(line))) pid = std::stoi(line);
    }
    if (pid == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_NE(pid, 0) << "no process of the daemon's cgroup runs a vCPU thread";
  const std::string procs = std::to_string(pid);
  EXPECT_EQ(::getsid(pid), pid);
  char target[256] = {};
  ASSERT_GT(::readlink(("/proc/" + procs + "/fd/1").c_str(), target, sizeof(target) - 1), 0);
  EXPECT_STREQ(target, "/dev/null");
  ::kill(pid, SIGTERM);
  EXPECT_TRUE(WaitForPidGone(pid, kTimeout));
}

TEST(Jailer, NoFileLimitHolds) {
  Jail jail("nofile-1", HEARTH_GUEST_HELLO);
  // Too few descriptors for KVM, the VM, a vCPU and the eventfds.
  ProcessResult r = RunProcess(jail.Argv({"--resource-limit", "no-file=6"}), kTimeout);
  EXPECT_FALSE(r.ExitedWith(0)) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("Too many open files"));
}

TEST(Jailer, FsizeLimitHolds) {
  Jail jail("fsize-1", HEARTH_GUEST_HELLO);
  // The VMM's log file may not grow past 100 bytes: the write that would is stopped (SIGXFSZ).
  ProcessResult r = RunProcess(jail.Argv({"--resource-limit", "fsize=100"}, {"--log-path", "/vm.log"}),
                               kTimeout);
  EXPECT_EQ(r.term_signal, SIGXFSZ) << r.Describe();
  struct stat st {};
  ASSERT_EQ(::stat((jail.root() + "/vm.log").c_str(), &st), 0);
  EXPECT_LE(st.st_size, 100);
}

TEST(Jailer, TwoJailsRunSideBySide) {
  Jail a("side-a", HEARTH_GUEST_ECHO);
  Jail b("side-b", HEARTH_GUEST_ECHO);
  Spawned va(a.Argv({}), a.base() + "/out", a.base() + "/err");
  Spawned vb(b.Argv({}), b.base() + "/out", b.base() + "/err");
  ASSERT_TRUE(WaitForVcpuThread(va.pid())) << ReadFile(a.base() + "/err");
  ASSERT_TRUE(WaitForVcpuThread(vb.pid())) << ReadFile(b.base() + "/err");
  // Each has its own root.
  EXPECT_TRUE(Exists("/proc/" + std::to_string(va.pid()) + "/root/vm.json"));
  struct stat ra {}, rb {};
  ASSERT_EQ(::stat(("/proc/" + std::to_string(va.pid()) + "/root/").c_str(), &ra), 0);
  ASSERT_EQ(::stat(("/proc/" + std::to_string(vb.pid()) + "/root/").c_str(), &rb), 0);
  EXPECT_NE(ra.st_ino, rb.st_ino);
  vb.WriteStdin("bee\n");
  va.WriteStdin("ay\n");
  int sa = va.Wait(kTimeout), sb = vb.Wait(kTimeout);
  EXPECT_TRUE(WIFEXITED(sa) && WEXITSTATUS(sa) == 0) << ReadFile(a.base() + "/err");
  EXPECT_TRUE(WIFEXITED(sb) && WEXITSTATUS(sb) == 0) << ReadFile(b.base() + "/err");
  EXPECT_EQ(ReadFile(a.base() + "/out"), "echo: AY\n");
  EXPECT_EQ(ReadFile(b.base() + "/out"), "echo: BEE\n");
}

// Lists everything under `dir` (recursively), for "nothing was created" checks.
std::vector<std::string> Tree(const std::string& dir) {
  std::vector<std::string> entries;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) entries.push_back(e.path().string());
  return entries;
}

struct BadArgs {
  const char* name;
  std::vector<std::string> argv;  // after the binary
  const char* message;
};

TEST(Jailer, BadArgumentsAreRefusedBeforeAnythingIsCreated) {
  TempDir base;
  const std::string hearth = HearthBinary();
  auto with = [&](std::vector<std::string> over) {
    std::vector<std::string> argv = {HEARTH_JAILER_BINARY, "--chroot-base-dir", base.path(),
                                     "--parent-cgroup", "hearth-test"};
    argv.insert(argv.end(), over.begin(), over.end());
    argv.insert(argv.end(), {"--", "--no-api", "--config-file", "/vm.json"});
    return argv;
  };
  const std::vector<std::string> good_exec = {"--exec-file", hearth};
  std::vector<BadArgs> cases = {
      {"empty id", {"--id", "", "--exec-file", hearth, "--uid", "1", "--gid", "1"}, "--id: empty"},
      {"id with /", {"--id", "a/b", "--exec-file", hearth, "--uid", "1", "--gid", "1"}, "only letters"},
      {"id too long", {"--id", std::string(65, 'a'), "--exec-file", hearth, "--uid", "1", "--gid", "1"}, "64"},
      {"missing exec", {"--id", "bad-1", "--exec-file", base.path() + "/nope", "--uid", "1", "--gid", "1"}, "No such file"},
      {"exec is a dir", {"--id", "bad-1", "--exec-file", base.path(), "--uid", "1", "--gid", "1"}, "not a regular file"},
      {"uid not a number", {"--id", "bad-1", "--exec-file", hearth, "--uid", "root", "--gid", "1"}, "--uid: 'root' is not a number"},
      {"gid negative", {"--id", "bad-1", "--exec-file", hearth, "--uid", "1", "--gid", "-5"}, "--gid"},
      {"unknown cgroup file", {"--id", "bad-1", "--exec-file", hearth, "--uid", "1", "--gid", "1", "--cgroup", "cpu.no_such_file=1"}, "no such cgroup file"},
      {"unknown controller", {"--id", "bad-1", "--exec-file", hearth, "--uid", "1", "--gid", "1", "--cgroup", "nosuchctl.max=1"}, "controller 'nosuchctl'"},
      {"cgroup without value", {"--id", "bad-1", "--exec-file", hearth, "--uid", "1", "--gid", "1", "--cgroup", "cpu.shares"}, "FILE=VALUE"},
      {"bad cgroup version", {"--id", "bad-1", "--exec-file", hearth, "--uid", "1", "--gid", "1", "--cgroup-version", "3"}, "1 or 2"},
      {"bad rlimit", {"--id", "bad-1", "--exec-file", hearth, "--uid", "1", "--gid", "1", "--resource-limit", "stack=5"}, "fsize and no-file"},
      {"missing netns", {"--id", "bad-1", "--exec-file", hearth, "--uid", "1", "--gid", "1", "--netns", "/var/run/netns/no-such-ns-hearth"}, "--netns"},
      {"missing uid", {"--id", "bad-1", "--exec-file", hearth, "--gid", "1"}, "--uid is required"},
      {"unknown flag", {"--id", "bad-1", "--exec-file", hearth, "--uid", "1", "--gid", "1", "--bogus"}, "unknown argument '--bogus'"},
      {"parent cgroup escapes", {"--id", "bad-1", "--exec-file", hearth, "--uid", "1", "--gid", "1", "--parent-cgroup", "../x"}, "--parent-cgroup"},
  };
  for (const auto& c : cases) {
    ProcessResult r = RunProcess(with(c.argv), kTimeout);
    EXPECT_TRUE(r.ExitedWith(154)) << c.name << "\n" << r.Describe();
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.name;
    EXPECT_THAT(Tree(base.path()), ::testing::IsEmpty()) << c.name;
  }
  EXPECT_FALSE(Exists("/sys/fs/cgroup/cpu/hearth-test/bad-1"));
}

TEST(Jailer, AFailedStepLeavesNothingBehindAndAnotherIdWorks) {
  Jail jail("fail-1", HEARTH_GUEST_HELLO);
  const std::string created = jail.base() + "/hearth/late-1";
  // cpu.shares refuses a word: the cgroup step fails after the jail and the cgroup exist.
  std::vector<std::string> argv = jail.Argv({"--parent-cgroup", "hearth-test", "--cgroup", "cpu.shares=lots"});
  argv[2] = "late-1";
  ProcessResult r = RunProcess(argv, kTimeout);
  EXPECT_TRUE(r.ExitedWith(1)) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("hearth-jailer: error: cgroup v1: cgroup: --cgroup cpu.shares"));
  EXPECT_FALSE(Exists(created)) << "the jail was left behind";
  EXPECT_FALSE(Exists("/sys/fs/cgroup/cpu/hearth-test/late-1")) << "the cgroup was left behind";
  // The prepared jail of another id is untouched and works.
  ProcessResult ok = RunProcess(jail.Argv({"--parent-cgroup", "hearth-test", "--cgroup", "cpu.shares=256"}), kTimeout);
  EXPECT_TRUE(ok.ExitedWith(0)) << ok.Describe();
  EXPECT_THAT(ok.out, HasSubstr("hello from tiny guest"));
}

}  // namespace
}  // namespace hearth::testing
