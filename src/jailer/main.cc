// hearth-jailer: starts a VMM inside a jail, in Firecracker's jailer's order of steps. Each step
// that fails names itself; what the jailer created before a failure is removed again, so a
// retry (with this id or another) starts from a clean host.
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/fd.h"
#include "jailer/args.h"
#include "jailer/cgroup.h"

namespace hearth::jailer {
namespace {

constexpr int kExitStepFailed = 1;
constexpr int kExitArgumentParsing = 154;

// What the jailer made on the host, undone in reverse if a later step fails. Paths are removed
// through an fd on the host's root taken before the mount namespace changes, so the undo works
// after pivot_root too.
class HostUndo {
 public:
  Status Init() {
    ASSIGN_OR_RETURN(host_root_, Fd::Open("/", O_PATH | O_DIRECTORY));
    return Ok();
  }
  void CreatedDir(const std::string& path) { created_.push_back({path, true}); }
  void CreatedFile(const std::string& path) { created_.push_back({path, false}); }
  void Run(JailCgroups* cgroups) {
    if (cgroups) cgroups->Undo();
    for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
      ::unlinkat(host_root_.get(), it->path.c_str() + 1, it->dir ? AT_REMOVEDIR : 0);
    }
    created_.clear();
  }

 private:
  struct Entry {
    std::string path;  // absolute host path
    bool dir;
  };
  Fd host_root_;
  std::vector<Entry> created_;
};

// mkdir -p, recording each directory it creates.
Status MakeDirs(const std::string& path, HostUndo& undo) {
  std::string at;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t next = path.find('/', pos + 1);
    if (next == std::string::npos) next = path.size();
    at = path.substr(0, next);
    pos = next;
    if (at.empty() || at == "/") continue;
    if (::mkdir(at.c_str(), 0755) == 0) {
      undo.CreatedDir(at);
    } else if (errno != EEXIST) {
      return ErrnoError("mkdir " + at);
    } else {
      struct stat st {};
      if (::lstat(at.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return Error(at + ": not a directory");
    }
  }
  return Ok();
}

// Puts the VMM binary at `to`. A root-owned binary that only root can write is hard-linked when
// it is on the same file system (copying a 20 MiB static binary would cost more than all the
// jailer's other steps together; the jailed uid can no more change the link than the original);
// anything else is copied.
Status CopyFile(const std::string& from, const std::string& to, HostUndo& undo) {
  ASSIGN_OR_RETURN(Fd in, Fd::Open(from, O_RDONLY));
  ASSIGN_OR_RETURN(uint64_t size, RegularFileSize(in.get(), from));
  struct stat existing {};
  const bool existed = ::lstat(to.c_str(), &existing) == 0;
  struct stat source {};
  if (::fstat(in.get(), &source) == 0 && source.st_uid == 0 && (source.st_mode & 022) == 0) {
    if (existed && existing.st_ino == source.st_ino && existing.st_dev == source.st_dev) return Ok();
    if (existed) ::unlink(to.c_str());
    if (::link(from.c_str(), to.c_str()) == 0) {
      if (!existed) undo.CreatedFile(to);
      return Ok();
    }
  }
  ASSIGN_OR_RETURN(Fd out, Fd::Open(to, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0755));
  if (!existed) undo.CreatedFile(to);
  uint64_t done = 0;
  while (done < size) {
    ssize_t n = ::sendfile(out.get(), in.get(), nullptr, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoError("copy " + from + " to " + to);
    done += static_cast<uint64_t>(n);
  }
  if (::fchmod(out.get(), 0755) != 0) return ErrnoError("chmod " + to);
  return Ok();
}

Status SetLimit(int resource, uint64_t value, const char* name) {
  rlimit limit{value, value};
  if (::setrlimit(resource, &limit) != 0) return ErrnoError(std::string("setrlimit ") + name);
  return Ok();
}

// Device nodes the VMM opens, with the host's own device numbers.
struct DeviceNode {
  const char* path;
  bool required;
  dev_t rdev = 0;
  bool present = false;
};

// Runs inside the jail; `host_root` is the jail's host path, for the undo records.
Status MakeDevices(std::vector<DeviceNode>& devices, uid_t uid, gid_t gid,
                   const std::string& host_root, HostUndo& undo) {
  for (const char* dir : {"/dev", "/dev/net"}) {
    if (::mkdir(dir, 0755) == 0) {
      undo.CreatedDir(host_root + dir);
    } else if (errno != EEXIST) {
      return ErrnoError(std::string("mkdir ") + dir);
    }
  }
  for (const auto& d : devices) {
    if (!d.present) continue;
    ::unlink(d.path);  // A node left by an earlier run of this id is replaced.
    if (::mknod(d.path, S_IFCHR | 0600, d.rdev) != 0) return ErrnoError(std::string("mknod ") + d.path);
    undo.CreatedFile(host_root + d.path);
    if (::chown(d.path, uid, gid) != 0) return ErrnoError(std::string("chown ") + d.path);
  }
  return Ok();
}

Result<uint64_t> MountId(const char* path) {
  struct statx stx {};
  if (::statx(AT_FDCWD, path, AT_NO_AUTOMOUNT, STATX_MNT_ID, &stx) != 0 ||
      !(stx.stx_mask & STATX_MNT_ID)) {
    return ErrnoError(std::string("statx ") + path);
  }
  return stx.stx_mnt_id;
}

// Detaches /old_root. umount2(MNT_DETACH) unhooks the mounts at once and then waits out an RCU
// grace period before it returns (~10 ms here, most of the jailer's time); a short-lived helper
// (double-forked, so never the VMM's zombie) makes that call, and the jailer goes on as soon as
// /old_root is no longer a mount point. If that does not happen within a second (the helper's
// umount failed), the jailer detaches synchronously and reports the error.
Status DetachOldRoot() {
  ASSIGN_OR_RETURN(uint64_t root_mnt, MountId("/"));
  pid_t helper = ::fork();
  if (helper == 0) {
    if (::fork() == 0) _exit(::umount2("/old_root", MNT_DETACH) == 0 ? 0 : 1);
    _exit(0);
  }
  if (helper > 0) {
    ::waitpid(helper, nullptr, 0);
    const uint64_t deadline = MonotonicMicros() + 1000000;
    while (MonotonicMicros() < deadline) {
      auto id = MountId("/old_root");
      if (id.ok() && *id == root_mnt) return Ok();
      ::sched_yield();
    }
  }
  if (::umount2("/old_root", MNT_DETACH) != 0) return ErrnoError("detach the old root");
  return Ok();
}

Status PivotIntoJail(const std::string& root) {
  if (::unshare(CLONE_NEWNS) != 0) return ErrnoError("unshare(CLONE_NEWNS)");
  // Nothing mounted from here on propagates back to the host.
  if (::mount(nullptr, "/", nullptr, MS_PRIVATE | MS_REC, nullptr) != 0) return ErrnoError("make / private");
  // pivot_root needs the new root to be a mount point.
  if (::mount(root.c_str(), root.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return ErrnoError("bind-mount " + root);
  }
  if (::chdir(root.c_str()) != 0) return ErrnoError("chdir " + root);
  if (::mkdir("old_root", 0700) != 0 && errno != EEXIST) return ErrnoError("mkdir old_root");
  if (::syscall(SYS_pivot_root, ".", "old_root") != 0) return ErrnoError("pivot_root");
  if (::chdir("/") != 0) return ErrnoError("chdir /");
  RETURN_IF_ERROR(DetachOldRoot());
  if (::rmdir("/old_root") != 0) return ErrnoError("rmdir /old_root");
  return Ok();
}

int Fail(const std::string& step, const Error& e) {
  std::fprintf(stderr, "hearth-jailer: error: %s: %s\n", step.c_str(), e.message().c_str());
  return kExitStepFailed;
}

int Run(int argc, char** argv) {
  const uint64_t start_us = MonotonicMicros();
  const uint64_t start_cpu_us = ProcessCpuMicros();

  // 1. Arguments: every refusal comes before anything exists.
  auto parsed = ParseJailerArgs(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "hearth-jailer: error: %s (see --help)\n", parsed.error().message().c_str());
    return kExitArgumentParsing;
  }
  const JailerArgs& args = *parsed;
  if (args.help) {
    std::fputs(kJailerUsage, stdout);
    return 0;
  }
  if (args.version) {
    std::puts("hearth-jailer v0.1.0");
    return 0;
  }

  // 2. Inherited fds (other than stdio) and environment go.
  if (::close_range(3, ~0U, 0) != 0) return Fail("close inherited fds", ErrnoError("close_range"));
  if (::clearenv() != 0) return Fail("clear the environment", Error("clearenv failed"));

  HostUndo undo;
  if (auto s = undo.Init(); !s.ok()) return Fail("open /", s.error());
  JailCgroups cgroups;
  auto fail = [&](const std::string& step, const Error& e) {
    undo.Run(&cgroups);
    return Fail(step, e);
  };

  // 3. The jail root and the VMM binary in it.
  const std::string root = args.jail_root();
  if (auto s = MakeDirs(root, undo); !s.ok()) return fail("create the jail " + root, s.error());
  const std::string exec_in_jail = "/" + args.exec_name();
  if (auto s = CopyFile(args.exec_file, root + exec_in_jail, undo); !s.ok()) {
    return fail("copy the exec file", s.error());
  }

  // 4. Resource limits.
  if (auto s = SetLimit(RLIMIT_NOFILE, args.limits.no_file, "no-file"); !s.ok()) {
    return fail("resource limits", s.error());
  }
  if (args.limits.fsize) {
    if (auto s = SetLimit(RLIMIT_FSIZE, *args.limits.fsize, "fsize"); !s.ok()) {
      return fail("resource limits", s.error());
    }
  }

  // 5. cgroups.
  auto joined = JailCgroups::Apply(args);
  if (!joined.ok()) return fail("cgroup v" + std::to_string(args.cgroup_version), joined.error());
  cgroups = std::move(joined).value();

  // Host things the later steps need, opened while the host is visible.
  std::vector<DeviceNode> devices = {{"/dev/kvm", true}, {"/dev/net/tun", false},
                                     {"/dev/urandom", false}, {"/dev/userfaultfd", false}};
  for (auto& d : devices) {
    struct stat st {};
    if (::stat(d.path, &st) == 0 && S_ISCHR(st.st_mode)) {
      d.rdev = st.st_rdev;
      d.present = true;
    } else if (d.required) {
      return fail("devices", ErrnoError(std::string("stat ") + d.path));
    }
  }
  Fd netns;
  if (args.netns) {
    auto fd = Fd::Open(*args.netns, O_RDONLY);
    if (!fd.ok()) return fail("open the network namespace", fd.error());
    netns = std::move(fd).value();
  }
  Fd dev_null;
  if (args.daemonize) {
    auto fd = Fd::Open("/dev/null", O_RDWR);
    if (!fd.ok()) return fail("daemonize", fd.error());
    dev_null = std::move(fd).value();
  }

  // 6. Mount namespace, pivot_root into the jail.
  if (auto s = PivotIntoJail(root); !s.ok()) return fail("enter the jail", s.error());

  // 7. Device nodes; the jail belongs to uid:gid.
  if (auto s = MakeDevices(devices, args.uid, args.gid, root, undo); !s.ok()) return fail("create devices", s.error());
  if (::chown("/", args.uid, args.gid) != 0) return fail("chown the jail", ErrnoError("chown /"));

  // 8. Network namespace.
  if (netns.valid() && ::setns(netns.get(), CLONE_NEWNET) != 0) {
    return fail("join the network namespace", ErrnoError("setns " + *args.netns));
  }
  netns.Reset();

  // 9. Daemonize: a new session (fork first if this process leads a group: setsid refuses),
  // stdio on /dev/null.
  if (args.daemonize) {
    if (::getpid() == ::getpgrp()) {
      pid_t child = ::fork();
      if (child < 0) return fail("daemonize", ErrnoError("fork"));
      if (child > 0) _exit(0);
    }
    if (::setsid() < 0) return fail("daemonize", ErrnoError("setsid"));
    for (int fd : {0, 1, 2}) {
      if (::dup2(dev_null.get(), fd) < 0) return fail("daemonize", ErrnoError("dup2 /dev/null"));
    }
    dev_null.Reset();
  }

  // 10. New PID namespace: the VMM is its pid 1; the parent records its host pid and leaves.
  uint64_t cpu_at_start = start_cpu_us;
  if (args.new_pid_ns) {
    if (::unshare(CLONE_NEWPID) != 0) return fail("new PID namespace", ErrnoError("unshare(CLONE_NEWPID)"));
    pid_t child = ::fork();
    if (child < 0) return fail("new PID namespace", ErrnoError("fork"));
    if (child > 0) {
      const std::string pid_file = exec_in_jail + ".pid";
      auto fd = Fd::Open(pid_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      std::string text = std::to_string(child) + "\n";
      if (!fd.ok() || !WriteAll(fd->get(), text.data(), text.size(), pid_file).ok()) {
        ::kill(child, SIGKILL);
        return fail("new PID namespace", fd.ok() ? ErrnoError("write " + pid_file) : fd.error());
      }
      _exit(0);
    }
    cpu_at_start = 0;  // A forked child's CPU clock starts at zero.
  }

  // 11. Drop privileges: no supplementary groups, then gid, then uid.
  if (::setgroups(0, nullptr) != 0) return fail("drop privileges", ErrnoError("setgroups"));
  if (::setresgid(args.gid, args.gid, args.gid) != 0) return fail("drop privileges", ErrnoError("setresgid"));
  if (::setresuid(args.uid, args.uid, args.uid) != 0) return fail("drop privileges", ErrnoError("setresuid"));

  // 12. The VMM, with the jail's id and when the jailer started.
  std::vector<std::string> vmm_argv = {exec_in_jail, "--id", args.id, "--start-time-us",
                                       std::to_string(start_us), "--start-time-cpu-us",
                                       std::to_string(cpu_at_start)};
  vmm_argv.insert(vmm_argv.end(), args.vmm_args.begin(), args.vmm_args.end());
  std::vector<char*> raw;
  for (auto& a : vmm_argv) raw.push_back(a.data());
  raw.push_back(nullptr);
  char* empty_env[] = {nullptr};
  ::execve(exec_in_jail.c_str(), raw.data(), empty_env);
  // Privileges are gone: the jail stays for the operator to inspect and remove.
  return Fail("exec " + exec_in_jail, ErrnoError("execve"));
}

}  // namespace
}  // namespace hearth::jailer

int main(int argc, char** argv) { return hearth::jailer::Run(argc, argv); }
