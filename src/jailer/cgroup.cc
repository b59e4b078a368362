#include "jailer/cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

#include "base/fd.h"

namespace hearth::jailer {
namespace {

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

Result<std::string> ReadText(const std::string& path) {
  std::ifstream in(path);
  if (!in) return ErrnoError("read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Status WriteText(const std::string& path, const std::string& text) {
  ASSIGN_OR_RETURN(Fd fd, Fd::Open(path, O_WRONLY));
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoError("write '" + text + "' to " + path);
  }
  return Ok();
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::stringstream in(s);
  for (std::string p; std::getline(in, p, sep);) parts.push_back(p);
  return parts;
}

// Files that exist only below a hierarchy's root (so a new parent cgroup cannot show them yet).
bool KnownNonRootFile(const std::string& file) {
  static const std::set<std::string> kFiles = {
      "pids.max", "cpu.max", "cpu.weight", "cpu.weight.nice", "cpu.idle", "cpu.uclamp.min",
      "cpu.uclamp.max", "memory.max", "memory.high", "memory.low", "memory.min",
      "memory.swap.max", "memory.swap.high", "memory.oom.group", "io.max", "io.weight",
      "io.latency", "cpuset.cpus", "cpuset.mems", "cpuset.cpus.partition",
      "cgroup.max.descendants", "cgroup.max.depth", "cgroup.freeze", "cgroup.type"};
  if (kFiles.contains(file)) return true;
  // hugetlb.<page size>.max and .rsvd.max (v2).
  auto parts = Split(file, '.');
  return parts[0] == "hugetlb" && parts.back() == "max" &&
         (parts.size() == 3 || (parts.size() == 4 && parts[2] == "rsvd"));
}

// The hierarchy (v1) holding `controller`.
const CgroupMount* MountFor(const std::vector<CgroupMount>& mounts, const std::string& controller) {
  for (const auto& m : mounts) {
    for (const auto& c : m.controllers) {
      if (c == controller) return &m;
    }
  }
  return nullptr;
}

// The process's current cgroup in the hierarchy with `controller` (v1) or the v2 one ("").
Result<std::string> CurrentCgroup(int version, const std::string& controller) {
  ASSIGN_OR_RETURN(std::string text, ReadText("/proc/self/cgroup"));
  for (const auto& line : Split(text, '\n')) {
    auto first = line.find(':');
    auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    std::string controllers = line.substr(first + 1, second - first - 1);
    std::string path = line.substr(second + 1);
    if (version == 2 && line.substr(0, first) == "0" && controllers.empty()) return path;
    if (version == 1) {
      for (const auto& c : Split(controllers, ',')) {
        if (c == controller) return path;
      }
    }
  }
  return Error("/proc/self/cgroup: no entry for " + (version == 2 ? std::string("cgroup v2") : controller));
}

}  // namespace

Result<std::vector<CgroupMount>> FindCgroupMounts(int version) {
  ASSIGN_OR_RETURN(std::string text, ReadText("/proc/mounts"));
  std::vector<CgroupMount> mounts;
  for (const auto& line : Split(text, '\n')) {
    auto fields = Split(line, ' ');
    if (fields.size() < 4) continue;
    if (version == 1 && fields[2] == "cgroup") {
      CgroupMount m{fields[1], {}};
      for (const auto& opt : Split(fields[3], ',')) m.controllers.push_back(opt);
      mounts.push_back(m);
    } else if (version == 2 && fields[2] == "cgroup2") {
      mounts.push_back(CgroupMount{fields[1], {}});
    }
  }
  if (mounts.empty()) return Error("/proc/mounts: no cgroup v" + std::to_string(version) + " hierarchy is mounted");
  return mounts;
}

Status ValidateCgroupSettings(const JailerArgs& args) {
  if (args.cgroups.empty()) return Ok();
  ASSIGN_OR_RETURN(auto mounts, FindCgroupMounts(args.cgroup_version));
  for (const auto& setting : args.cgroups) {
    const std::string what = "--cgroup " + setting.file;
    const std::string controller = setting.controller();
    std::string root;
    if (args.cgroup_version == 1) {
      const CgroupMount* m = MountFor(mounts, controller);
      if (m == nullptr) return Error(what + ": no cgroup v1 hierarchy has the controller '" + controller + "'");
      root = m->path;
    } else {
      root = mounts.front().path;
      if (controller != "cgroup") {
        ASSIGN_OR_RETURN(std::string available, ReadText(root + "/cgroup.controllers"));
        bool found = false;
        for (const auto& c : Split(available.substr(0, available.find('\n')), ' ')) found = found || c == controller;
        if (!found) return Error(what + ": the cgroup v2 hierarchy at " + root + " has no controller '" + controller + "'");
      }
    }
    const std::string parent = root + "/" + *args.parent_cgroup;
    if (!Exists(parent + "/" + setting.file) && !Exists(root + "/" + setting.file) &&
        !KnownNonRootFile(setting.file)) {
      return Error(what + ": no such cgroup file in " + root);
    }
  }
  return Ok();
}

Result<JailCgroups> JailCgroups::Apply(const JailerArgs& args) {
  JailCgroups cg;
  if (args.cgroups.empty()) return cg;
  auto fail = [&cg](const Error& e) -> Result<JailCgroups> {
    cg.Undo();
    return e;
  };
  auto mounts = FindCgroupMounts(args.cgroup_version);
  if (!mounts.ok()) return mounts.error();
  // One directory per hierarchy involved, in the order the settings name them.
  std::vector<std::pair<std::string, std::string>> hierarchies;  // (root, a controller in it)
  for (const auto& s : args.cgroups) {
    std::string root = args.cgroup_version == 1 ? MountFor(*mounts, s.controller())->path : mounts->front().path;
    bool seen = false;
    for (const auto& h : hierarchies) seen = seen || h.first == root;
    if (!seen) hierarchies.emplace_back(root, s.controller());
  }
  for (const auto& [root, controller] : hierarchies) {
    Joined j;
    j.hierarchy_root = root;
    auto current = CurrentCgroup(args.cgroup_version, controller);
    if (!current.ok()) return fail(current.error());
    j.original = *current;
    // mkdir -p <root>/<parent>/<id>, copying cpuset.cpus/mems down (v1 leaves them empty).
    std::string path = root;
    for (const auto& part : Split(*args.parent_cgroup + "/" + args.id, '/')) {
      std::string parent_path = path;
      path += "/" + part;
      if (::mkdir(path.c_str(), 0755) == 0) {
        j.created_dirs.push_back(path);
      } else if (errno != EEXIST) {
        auto e = ErrnoError("cgroup: mkdir " + path);
        cg.joined_.push_back(j);
        return fail(e);
      }
      if (args.cgroup_version == 1 && Exists(path + "/cpuset.cpus")) {
        for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
          auto mine = ReadText(path + "/" + f);
          if (mine.ok() && (mine->empty() || *mine == "\n")) {
            auto inherited = ReadText(parent_path + "/" + f);
            if (inherited.ok()) (void)WriteText(path + "/" + f, *inherited);
          }
        }
      }
    }
    cg.joined_.push_back(j);
  }
  if (args.cgroup_version == 2) {
    // Enable each controller in subtree_control from the root down to the parent.
    std::set<std::string> controllers;
    for (const auto& s : args.cgroups) {
      if (s.controller() != "cgroup") controllers.insert(s.controller());
    }
    std::string path = mounts->front().path;
    for (const auto& part : Split(*args.parent_cgroup, '/')) {
      for (const auto& c : controllers) {
        if (auto s = WriteText(path + "/cgroup.subtree_control", "+" + c); !s.ok()) {
          return fail(s.error().Wrap("cgroup v2: enabling " + c));
        }
      }
      path += "/" + part;
    }
    for (const auto& c : controllers) {
      if (auto s = WriteText(path + "/cgroup.subtree_control", "+" + c); !s.ok()) {
        return fail(s.error().Wrap("cgroup v2: enabling " + c));
      }
    }
  }
  for (const auto& s : args.cgroups) {
    std::string root = args.cgroup_version == 1 ? MountFor(*mounts, s.controller())->path : mounts->front().path;
    std::string file = root + "/" + *args.parent_cgroup + "/" + args.id + "/" + s.file;
    if (auto w = WriteText(file, s.value); !w.ok()) return fail(w.error().Wrap("cgroup: --cgroup " + s.file));
  }
  const std::string pid = std::to_string(::getpid());
  for (auto& j : cg.joined_) {
    std::string procs = j.hierarchy_root + "/" + *args.parent_cgroup + "/" + args.id + "/cgroup.procs";
    if (auto w = WriteText(procs, pid); !w.ok()) return fail(w.error().Wrap("cgroup: joining"));
    j.moved = true;
  }
  return cg;
}

void JailCgroups::Undo() {
  const std::string pid = std::to_string(::getpid());
  for (auto it = joined_.rbegin(); it != joined_.rend(); ++it) {
    if (it->moved) (void)WriteText(it->hierarchy_root + it->original + "/cgroup.procs", pid);
    for (auto d = it->created_dirs.rbegin(); d != it->created_dirs.rend(); ++d) ::rmdir(d->c_str());
  }
  joined_.clear();
}

}  // namespace hearth::jailer
