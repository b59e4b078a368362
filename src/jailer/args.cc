#include "jailer/args.h"

#include <sys/stat.h>

#include <cctype>
#include <charconv>
#include <limits>

#include "jailer/cgroup.h"

namespace hearth::jailer {

const char* const kJailerUsage =
    "usage: hearth-jailer --id ID --exec-file PATH --uid UID --gid GID [options] -- [VMM args]\n"
    "\n"
    "  --id ID                 the micro-VM's id: letters, digits and '-', at most 64\n"
    "  --exec-file PATH        the VMM binary, copied into the jail (a statically linked hearth)\n"
    "  --uid UID, --gid GID    the user and group the VMM runs as\n"
    "  --chroot-base-dir DIR   where jails live (default /srv/jailer): DIR/<exec name>/<id>/root\n"
    "  --netns PATH            join this network namespace (e.g. /var/run/netns/NAME)\n"
    "  --cgroup-version 1|2    cgroup hierarchy to use (default 1)\n"
    "  --cgroup FILE=VALUE     write VALUE to FILE in the VM's cgroup (repeatable)\n"
    "  --parent-cgroup PATH    the VM's cgroup is PATH/<id> (default: the exec file's name)\n"
    "  --resource-limit fsize=N|no-file=N   rlimits (repeatable; no-file defaults to 2048)\n"
    "  --daemonize             detach: new session, stdio to /dev/null\n"
    "  --new-pid-ns            run the VMM as pid 1 of a new PID namespace; its host pid goes to\n"
    "                          <jail root>/<exec name>.pid\n"
    "  --version, --help\n"
    "\n"
    "The VMM is started as /<exec name> --id ID --start-time-us T --start-time-cpu-us C [VMM args]\n"
    "with an empty environment.\n";

std::string JailerArgs::exec_name() const {
  auto slash = exec_file.find_last_of('/');
  return slash == std::string::npos ? exec_file : exec_file.substr(slash + 1);
}

std::string JailerArgs::jail_root() const {
  return chroot_base_dir + "/" + exec_name() + "/" + id + "/root";
}

namespace {

Result<uint64_t> ParseNumber(const std::string& flag, const std::string& text, uint64_t max) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v > max) {
    return Error(flag + ": '" + text + "' is not a number (0 to " + std::to_string(max) + ")");
  }
  return v;
}

Status ValidateId(const std::string& id) {
  if (id.empty()) return Error("--id: empty");
  if (id.size() > 64) return Error("--id: longer than 64 characters");
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') {
      return Error("--id '" + id + "': only letters, digits and '-' are allowed");
    }
  }
  return Ok();
}

// A path component or relative path of plain names: no "..", no empty parts, no leading '/'.
bool IsPlainRelativePath(const std::string& path) {
  if (path.empty() || path.front() == '/' || path.back() == '/') return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

Result<JailerArgs> ParseJailerArgs(int argc, char** argv) {
  JailerArgs args;
  bool have_id = false, have_exec = false, have_uid = false, have_gid = false;
  int i = 1;
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "--help") {
      args.help = true;
      continue;
    }
    if (arg == "--version") {
      args.version = true;
      continue;
    }
    if (arg == "--daemonize") {
      args.daemonize = true;
      continue;
    }
    if (arg == "--new-pid-ns") {
      args.new_pid_ns = true;
      continue;
    }
    static const char* const kValued[] = {"--id", "--exec-file", "--uid", "--gid",
                                          "--chroot-base-dir", "--netns", "--cgroup-version",
                                          "--cgroup", "--parent-cgroup", "--resource-limit"};
    bool known = false;
    for (const char* v : kValued) known = known || arg == v;
    if (!known) return Error("unknown argument '" + arg + "'");
    if (i + 1 >= argc) return Error(arg + " needs a value");
    std::string value = argv[++i];
    if (arg == "--id") {
      args.id = value;
      have_id = true;
    } else if (arg == "--exec-file") {
      args.exec_file = value;
      have_exec = true;
    } else if (arg == "--uid") {
      ASSIGN_OR_RETURN(uint64_t uid, ParseNumber(arg, value, std::numeric_limits<uid_t>::max() - 1));
      args.uid = static_cast<uid_t>(uid);
      have_uid = true;
    } else if (arg == "--gid") {
      ASSIGN_OR_RETURN(uint64_t gid, ParseNumber(arg, value, std::numeric_limits<gid_t>::max() - 1));
      args.gid = static_cast<gid_t>(gid);
      have_gid = true;
    } else if (arg == "--chroot-base-dir") {
      if (value.empty() || value.front() != '/') return Error("--chroot-base-dir: must be an absolute path");
      while (value.size() > 1 && value.back() == '/') value.pop_back();
      args.chroot_base_dir = value;
    } else if (arg == "--netns") {
      args.netns = value;
    } else if (arg == "--cgroup-version") {
      if (value != "1" && value != "2") return Error("--cgroup-version: '" + value + "' is not 1 or 2");
      args.cgroup_version = value == "1" ? 1 : 2;
    } else if (arg == "--cgroup") {
      auto eq = value.find('=');
      if (eq == std::string::npos || eq == 0) return Error("--cgroup '" + value + "': expected FILE=VALUE");
      CgroupSetting setting{value.substr(0, eq), value.substr(eq + 1)};
      if (setting.file.find('/') != std::string::npos || setting.file.find('.') == std::string::npos ||
          setting.file.front() == '.' || setting.value.find('\n') != std::string::npos) {
        return Error("--cgroup '" + value + "': FILE must be <controller>.<name>, VALUE one line");
      }
      args.cgroups.push_back(setting);
    } else if (arg == "--parent-cgroup") {
      if (!IsPlainRelativePath(value)) {
        return Error("--parent-cgroup '" + value + "': must be a relative path without '..'");
      }
      args.parent_cgroup = value;
    } else if (arg == "--resource-limit") {
      auto eq = value.find('=');
      std::string name = value.substr(0, eq);
      if (eq == std::string::npos) return Error("--resource-limit '" + value + "': expected NAME=N");
      ASSIGN_OR_RETURN(uint64_t n, ParseNumber("--resource-limit " + name, value.substr(eq + 1),
                                               std::numeric_limits<int64_t>::max()));
      if (name == "fsize") {
        args.limits.fsize = n;
      } else if (name == "no-file") {
        args.limits.no_file = n;
      } else {
        return Error("--resource-limit '" + value + "': only fsize and no-file are supported");
      }
    }
  }
  for (; i < argc; ++i) args.vmm_args.emplace_back(argv[i]);
  if (args.help || args.version) return args;

  if (!have_id) return Error("--id is required");
  RETURN_IF_ERROR(ValidateId(args.id));
  if (!have_exec) return Error("--exec-file is required");
  if (!have_uid) return Error("--uid is required");
  if (!have_gid) return Error("--gid is required");
  struct stat st {};
  if (::stat(args.exec_file.c_str(), &st) != 0) return ErrnoError("--exec-file " + args.exec_file);
  if (!S_ISREG(st.st_mode)) return Error("--exec-file " + args.exec_file + ": not a regular file");
  if (args.exec_name().empty() || args.exec_name() == "." || args.exec_name() == "..") {
    return Error("--exec-file " + args.exec_file + ": no file name");
  }
  if (args.netns) {
    if (::stat(args.netns->c_str(), &st) != 0) return ErrnoError("--netns " + *args.netns);
  }
  if (!args.parent_cgroup) args.parent_cgroup = args.exec_name();
  RETURN_IF_ERROR(ValidateCgroupSettings(args));
  return args;
}

}  // namespace hearth::jailer
