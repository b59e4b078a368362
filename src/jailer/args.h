// hearth-jailer's command line (Firecracker's jailer flags), parsed and validated without
// touching the host: every refusal happens before the jailer creates anything.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace hearth::jailer {

struct CgroupSetting {
  std::string file;   // e.g. "cpu.shares": the controller is the part before the first '.'.
  std::string value;
  std::string controller() const { return file.substr(0, file.find('.')); }
};

struct ResourceLimits {
  std::optional<uint64_t> fsize;
  uint64_t no_file = 2048;  // Firecracker's default.
};

struct JailerArgs {
  std::string id;
  std::string exec_file;   // Host path of the VMM binary.
  uid_t uid = 0;
  gid_t gid = 0;
  std::string chroot_base_dir = "/srv/jailer";
  std::optional<std::string> netns;
  int cgroup_version = 1;
  std::vector<CgroupSetting> cgroups;
  std::optional<std::string> parent_cgroup;  // Default: the exec file's name.
  ResourceLimits limits;
  bool daemonize = false;
  bool new_pid_ns = false;
  std::vector<std::string> vmm_args;  // Everything after "--".
  bool help = false;
  bool version = false;

  std::string exec_name() const;  // Base name of exec_file.
  // <chroot_base_dir>/<exec name>/<id>/root
  std::string jail_root() const;
};

// Parses and checks the syntax and the host facts a refusal can rest on (exec file is a regular
// file, netns file exists, cgroup controllers and files exist) without creating anything.
Result<JailerArgs> ParseJailerArgs(int argc, char** argv);

extern const char* const kJailerUsage;

}  // namespace hearth::jailer
