#include "tests/support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace hearth::testing {
namespace {

using Clock = std::chrono::steady_clock;

// An owned fd; closes on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  Fd read;
  Fd write;
};

bool MakePipe(Pipe& p) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return false;
  p.read.Reset(fds[0]);
  p.write.Reset(fds[1]);
  return true;
}

void SetNonBlocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// Reads what is available from `fd` into `sink`. Returns false on EOF/error.
bool Drain(int fd, std::string& sink) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      sink.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    return false;
  }
}

void IgnoreSigpipeOnce() {
  static const bool done = [] {
    signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)done;
}

[[noreturn]] void ExecChild(const std::vector<char*>& args, int in, int out,
                            int err, int report) {
  setpgid(0, 0);
  signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(127);
  execvp(args[0], args.data());
  int e = errno;
  ssize_t ignored = write(report, &e, sizeof e);
  (void)ignored;
  _exit(127);
}

}  // namespace

std::string ProcessResult::Describe() const {
  std::ostringstream s;
  s << "exit_code=" << exit_code << " term_signal=" << term_signal
    << " timed_out=" << (timed_out ? "true" : "false") << " seconds=" << seconds
    << "\n--- stdout (" << out.size() << " bytes) ---\n"
    << out << "\n--- stderr (" << err.size() << " bytes) ---\n"
    << err << "\n--- end ---";
  return s.str();
}

ProcessResult RunProcess(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout,
                         std::string_view stdin_data) {
  ProcessResult result;
  if (argv.empty()) {
    result.exit_code = 127;
    result.err = "RunProcess: empty argv";
    return result;
  }
  IgnoreSigpipeOnce();

  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  Pipe in, out, err, report;
  if (!MakePipe(in) || !MakePipe(out) || !MakePipe(err) || !MakePipe(report)) {
    result.exit_code = 127;
    result.err = std::string("RunProcess: pipe2: ") + std::strerror(errno);
    return result;
  }

  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline = start + timeout;
  pid_t pid = fork();
  if (pid < 0) {
    result.exit_code = 127;
    result.err = std::string("RunProcess: fork: ") + std::strerror(errno);
    return result;
  }
  if (pid == 0) {
    ExecChild(args, in.read.get(), out.write.get(), err.write.get(),
              report.write.get());
  }
  setpgid(pid, pid);  // Also done by the child; whichever runs first wins.
  in.read.Reset();
  out.write.Reset();
  err.write.Reset();
  report.write.Reset();

  // The report pipe closes on a successful exec, or carries errno.
  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(report.read.get(), &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof exec_errno)) exec_errno = 0;

  SetNonBlocking(in.write.get());
  SetNonBlocking(out.read.get());
  SetNonBlocking(err.read.get());
  if (stdin_data.empty()) in.write.Reset();

  // A pidfd tells us when the child exits even if a descendant keeps the
  // pipes open; without one, poll in short ticks.
  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));

  size_t written = 0;
  bool exited = false;
  bool out_open = true, err_open = true;
  while (!exited) {
    auto now = Clock::now();
    if (now >= deadline) {
      kill(-pid, SIGKILL);
      result.timed_out = true;
      break;
    }
    pollfd fds[4];
    int nfds = 0;
    int out_i = -1, err_i = -1, in_i = -1;
    if (out_open) {
      out_i = nfds;
      fds[nfds++] = {out.read.get(), POLLIN, 0};
    }
    if (err_open) {
      err_i = nfds;
      fds[nfds++] = {err.read.get(), POLLIN, 0};
    }
    if (in.write.get() >= 0) {
      in_i = nfds;
      fds[nfds++] = {in.write.get(), POLLOUT, 0};
    }
    if (pidfd.get() >= 0) fds[nfds++] = {pidfd.get(), POLLIN, 0};
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now)
            .count() +
        1;
    int wait_ms =
        static_cast<int>(pidfd.get() >= 0 ? std::min<long long>(left, 1000)
                                          : std::min<long long>(left, 20));
    int r = poll(fds, static_cast<nfds_t>(nfds), wait_ms);
    if (r < 0 && errno != EINTR) break;
    if (out_i >= 0 && fds[out_i].revents)
      out_open = Drain(out.read.get(), result.out);
    if (err_i >= 0 && fds[err_i].revents)
      err_open = Drain(err.read.get(), result.err);
    if (in_i >= 0 && fds[in_i].revents) {
      if (fds[in_i].revents & (POLLERR | POLLHUP)) {
        in.write.Reset();
      } else {
        ssize_t w = write(in.write.get(), stdin_data.data() + written,
                          stdin_data.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) ||
            written == stdin_data.size()) {
          in.write.Reset();
        }
      }
    }
    // Has the child exited? Look without reaping, so that its pid (and the
    // process group id) stays reserved until the group is cleaned up.
    siginfo_t info{};
    if (waitid(P_PID, static_cast<id_t>(pid), &info,
               WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == pid) {
      exited = true;
    }
  }
  // Take whatever is still buffered, then kill any stragglers in the group.
  if (out_open) Drain(out.read.get(), result.out);
  if (err_open) Drain(err.read.get(), result.err);
  kill(-pid, SIGKILL);

  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
  if (exec_errno != 0) {
    result.err += "RunProcess: cannot execute " + argv[0] + ": " +
                  std::strerror(exec_errno);
  }
  return result;
}

std::string HearthBinary() {
  if (const char* env = std::getenv("HEARTH_BINARY"); env && *env) return env;
#ifdef HEARTH_BINARY
  return HEARTH_BINARY;
#else
  return "hearth";
#endif
}

std::vector<std::string> SplitLines(std::string_view text) {
  std::vector<std::string> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) {
      lines.emplace_back(text);
      break;
    }
    lines.emplace_back(text.substr(0, nl));
    text.remove_prefix(nl + 1);
  }
  return lines;
}

}  // namespace hearth::testing
