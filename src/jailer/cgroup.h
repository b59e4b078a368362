// The jail's cgroup: <mount>/<parent>/<id> in every v1 hierarchy a --cgroup setting names (each
// found from /proc/mounts), or in the v2 hierarchy, with the settings written and the process
// moved in. Undo() takes the process back out and removes what was created.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "jailer/args.h"

namespace hearth::jailer {

struct CgroupMount {
  std::string path;                      // e.g. /sys/fs/cgroup/cpu
  std::vector<std::string> controllers;  // v1: its mount options' controllers; v2: empty
};

// Mounted hierarchies of `version` (1 or 2) from /proc/mounts.
Result<std::vector<CgroupMount>> FindCgroupMounts(int version);
// Checks each setting names a controller this host has for `version` and a file it knows,
// without creating anything.
Status ValidateCgroupSettings(const JailerArgs& args);

class JailCgroups {
 public:
  // Creates, writes and joins; on error everything it did is already undone.
  static Result<JailCgroups> Apply(const JailerArgs& args);
  // Moves the process back where it was and removes the directories it created (for a later
  // step's failure).
  void Undo();

 private:
  struct Joined {
    std::string hierarchy_root;  // mount path
    std::string original;        // the process's cgroup before (relative to the root)
    std::vector<std::string> created_dirs;  // deepest last
    bool moved = false;
  };
  std::vector<Joined> joined_;
};

}  // namespace hearth::jailer
