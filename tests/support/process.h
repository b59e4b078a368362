// Running a child process (typically the hearth binary) with a hard timeout.
//
// Used by the integration tests; needs no KVM. Not thread-safe with respect to
// SIGPIPE: the first call sets SIGPIPE to SIG_IGN in the calling process.

#ifndef HEARTH_TESTS_SUPPORT_PROCESS_H_
#define HEARTH_TESTS_SUPPORT_PROCESS_H_

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::testing {

// How a child process ended and what it wrote.
struct ProcessResult {
  // The exit status when the process exited normally, else -1.
  int exit_code = -1;
  // The signal that terminated the process, else 0.
  int term_signal = 0;
  // True when the timeout expired and the process group was killed.
  bool timed_out = false;
  // Everything the process (and its children) wrote to stdout and stderr.
  std::string out;
  std::string err;
  // Wall time from fork to exit.
  double seconds = 0;

  // True when the process exited normally with `code` and did not time out.
  bool ExitedWith(int code) const {
    return !timed_out && term_signal == 0 && exit_code == code;
  }
  // A multi-line summary (status, time, stdout, stderr) for failure messages.
  std::string Describe() const;
};

// Runs argv[0] (looked up in PATH when it has no '/') with argv, feeding
// `stdin_data` to its stdin and then closing it, and collects stdout and
// stderr. The child is the leader of a new process group; when `timeout`
// expires the whole group gets SIGKILL, so this never hangs. When the child
// exits, any of its descendants still in the group are killed too.
// If the program cannot be executed, the result has exit_code 127 and err
// names the program and the error.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout,
                         std::string_view stdin_data = {});

// The hearth binary under test: $HEARTH_BINARY from the environment when set,
// else the compile definition HEARTH_BINARY that the hearth_test_support
// CMake target exports (the path of the `hearth` target).
std::string HearthBinary();

// Splits `text` into lines (without the '\n'); a trailing newline does not
// yield an empty last line.
std::vector<std::string> SplitLines(std::string_view text);

}  // namespace hearth::testing

#endif  // HEARTH_TESTS_SUPPORT_PROCESS_H_
