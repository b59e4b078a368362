// A long-running child (a jailed VMM) whose stdin stays open and whose stdout/stderr go to
// files, so a test can look at it through /proc while it runs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace hearth::testing {

class Spawned {
 public:
  // Starts argv in its own process group; output goes to `out_path` and `err_path`.
  Spawned(const std::vector<std::string>& argv, const std::string& out_path,
          const std::string& err_path);
  ~Spawned();  // Kills the process group if still running.

  pid_t pid() const { return pid_; }
  void WriteStdin(const std::string& data);
  void CloseStdin();
  // Waits for exit; returns the wait status, or -1 on timeout (then kills the group).
  int Wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  bool reaped_ = false;
};

std::string ReadFile(const std::string& path);
// Polls until `path` contains `needle` or `timeout` passes.
bool WaitForFileContains(const std::string& path, const std::string& needle,
                         std::chrono::milliseconds timeout);
// Polls until `pid` no longer exists (for a process that is not our child).
bool WaitForPidGone(pid_t pid, std::chrono::milliseconds timeout);

}  // namespace hearth::testing
