// Jailer overhead: the time from starting a launcher process (fork + exec) to the first byte
// of a tiny guest's serial output on its stdout, for
//   direct: hearth --no-api --config-file vm.json
//   jailed: hearth-jailer --id <fresh id> ... -- --no-api --config-file /vm.json
// alternating the two so host noise falls on both. Each jailed run gets a fresh id (a new jail
// directory, devices, a hard link of the binary), created by the jailer inside the timed span;
// jails are removed between runs, outside it. A dynamically linked hearth gets its libraries
// hard-linked into each jail beforehand (untimed). Prints median, p10, p90, min and max of each and
// the median difference (Hearth's target: under 10 ms added).
//
// Then the same pair for the API: fork + exec -> the API socket answers GET / with 200
// (hearth --api-sock, direct and jailed), the figure the issue names.
//
//   hearth_jailer_bench [--runs 50] [--hearth PATH] [--jailer PATH] [--guest PATH] [--verbose]
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/jailer/jail_libraries.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Runs argv with stdout on a pipe; returns ms to the first stdout byte (or -1), waits for exit.
double TimeToFirstOutput(const std::vector<std::string>& argv) {
  int out[2];
  if (pipe(out) != 0) return -1;
  auto start = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 2);
    std::vector<char*> raw;
    for (const auto& a : argv) raw.push_back(const_cast<char*>(a.c_str()));
    raw.push_back(nullptr);
    execv(raw[0], raw.data());
    _exit(127);
  }
  close(out[1]);
  double ms = -1;
  pollfd p{out[0], POLLIN, 0};
  if (poll(&p, 1, 30000) == 1) {
    char c;
    if (read(out[0], &c, 1) == 1) {
      ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    }
  }
  char buf[4096];
  while (read(out[0], buf, sizeof(buf)) > 0) {
  }
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return ms;
}

// Runs argv (stdio to /dev/null) and returns ms until `socket_path` answers GET / with 200
// (or -1); then kills the process.
double TimeToApiAnswer(const std::vector<std::string>& argv, const std::string& socket_path) {
  auto start = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    std::vector<char*> raw;
    for (const auto& a : argv) raw.push_back(const_cast<char*>(a.c_str()));
    raw.push_back(nullptr);
    execv(raw[0], raw.data());
    _exit(127);
  }
  double ms = -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_path.c_str());
  while (std::chrono::duration<double>(Clock::now() - start).count() < 10) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
      char buf[512] = {};
      if (write(fd, req, sizeof(req) - 1) > 0 && read(fd, buf, sizeof(buf) - 1) > 12 &&
          std::string(buf).rfind("HTTP/1.1 200", 0) == 0) {
        ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        close(fd);
        break;
      }
    }
    close(fd);
    usleep(100);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return ms;
}

struct Stats {
  double median, p10, p90, min, max;
};

Stats Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[static_cast<size_t>(q * (v.size() - 1) + 0.5)]; };
  return {at(0.5), at(0.1), at(0.9), v.front(), v.back()};
}

void Print(const char* name, const Stats& s, size_t n) {
  std::printf("%-8s n=%zu median %.2f ms (p10 %.2f, p90 %.2f, min %.2f, max %.2f)\n", name, n,
              s.median, s.p10, s.p90, s.min, s.max);
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 50;
  bool verbose = false;
  std::string hearth = HEARTH_BINARY, jailer = HEARTH_JAILER_BINARY, guest = HEARTH_GUEST_HELLO;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) runs = std::stoi(argv[++i]);
    else if (a == "--hearth" && i + 1 < argc) hearth = argv[++i];
    else if (a == "--jailer" && i + 1 < argc) jailer = argv[++i];
    else if (a == "--guest" && i + 1 < argc) guest = argv[++i];
    else if (a == "--verbose") verbose = true;
    else {
      std::fprintf(stderr, "usage: %s [--runs N] [--hearth P] [--jailer P] [--guest P] [--verbose]\n", argv[0]);
      return 2;
    }
  }
  if (geteuid() != 0) {
    std::fprintf(stderr, "hearth_jailer_bench: the jailer needs root\n");
    return 2;
  }
  char tmpl[] = "/tmp/hearth-jailer-bench-XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  const std::string base = tmpl;
  const std::string config = R"({"boot-source": {"kernel_image_path": "%s"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 32}})";
  auto write_config = [&](const std::string& path, const std::string& kernel) {
    std::ofstream(path) << std::string(config).replace(config.find("%s"), 2, kernel);
  };
  write_config(base + "/direct.json", guest);
  std::printf("jailer overhead: fork+exec -> first guest serial byte, tiny guest %s\n", guest.c_str());
  std::printf("direct: %s --no-api --config-file vm.json\n", hearth.c_str());
  std::printf("jailed: %s --id ID --exec-file %s --uid 10000 --gid 10000 --chroot-base-dir %s -- "
              "--no-api --config-file /vm.json\n", jailer.c_str(), hearth.c_str(), base.c_str());
  std::vector<double> direct, jailed;
  int failures = 0;
  for (int i = -1; i < runs; ++i) {  // run -1: warm-up, not counted
    const std::string id = "bench-" + std::to_string(i + 1);
    const std::string root = base + "/jails/hearth/" + id + "/root";
    fs::create_directories(root);
    fs::copy_file(guest, root + "/guest.elf", fs::copy_options::overwrite_existing);
    write_config(root + "/vm.json", "/guest.elf");
    // hearth is dynamically linked (cpp-httplib): its loader and libraries go into the jail,
    // as hard links, outside the timed span (the operator's setup).
    if (!hearth::testing::PutLibrariesInJail(hearth, root)) {
      std::fprintf(stderr, "cannot put %s's libraries in the jail\n", hearth.c_str());
      return 1;
    }
    double d = TimeToFirstOutput({hearth, "--no-api", "--config-file", base + "/direct.json"});
    double j = TimeToFirstOutput({jailer, "--id", id, "--exec-file", hearth, "--uid", "10000",
                                  "--gid", "10000", "--chroot-base-dir", base + "/jails", "--",
                                  "--no-api", "--config-file", "/vm.json"});
    std::error_code ec;
    fs::remove_all(base + "/jails/hearth/" + id, ec);
    if (d < 0 || j < 0) {
      ++failures;
      continue;
    }
    if (verbose) std::printf("run %d: direct %.2f ms, jailed %.2f ms\n", i, d, j);
    if (i < 0) continue;
    direct.push_back(d);
    jailed.push_back(j);
  }
  std::error_code ec;
  fs::remove_all(base, ec);
  if (direct.empty()) {
    std::printf("failures: %d (no successful run)\n", failures);
    return 1;
  }
  Stats sd = Summarize(direct), sj = Summarize(jailed);
  Print("direct", sd, direct.size());
  Print("jailed", sj, jailed.size());
  std::vector<double> diff;
  for (size_t k = 0; k < direct.size(); ++k) diff.push_back(jailed[k] - direct[k]);
  Stats sdiff = Summarize(diff);
  std::printf("summary: jailer adds %.2f ms (median of paired differences; p10 %.2f, p90 %.2f); "
              "ratio of medians %.2f\n", sdiff.median, sdiff.p10, sdiff.p90, sj.median / sd.median);
  std::printf("target: under 10 ms added: %s\n", sdiff.median < 10 ? "met" : "missed");
  std::printf("failures: %d\n", failures);

  // The API variant: start -> the socket answers.
  char tmpl2[] = "/tmp/hearth-jailer-api-XXXXXX";
  if (!mkdtemp(tmpl2)) return 1;
  const std::string base2 = tmpl2;
  std::vector<double> api_direct, api_jailed;
  int api_failures = 0;
  for (int i = -1; i < runs; ++i) {
    const std::string id = "api-" + std::to_string(i + 1);
    const std::string root = base2 + "/j/hearth/" + id + "/root";
    fs::create_directories(root);
    if (!hearth::testing::PutLibrariesInJail(hearth, root)) return 1;
    const std::string direct_sock = base2 + "/direct.sock";
    ::unlink(direct_sock.c_str());
    double d = TimeToApiAnswer({hearth, "--api-sock", direct_sock}, direct_sock);
    double j = TimeToApiAnswer({jailer, "--id", id, "--exec-file", hearth, "--uid", "10000", "--gid", "10000",
                                "--chroot-base-dir", base2 + "/j", "--", "--api-sock", "/api.sock"},
                               root + "/api.sock");
    std::error_code ec2;
    fs::remove_all(base2 + "/j/hearth/" + id, ec2);
    if (d < 0 || j < 0) {
      ++api_failures;
      continue;
    }
    if (i < 0) continue;
    api_direct.push_back(d);
    api_jailed.push_back(j);
  }
  std::error_code ec3;
  fs::remove_all(base2, ec3);
  std::printf("\njailer overhead: fork+exec -> API socket answers GET / (200)\n");
  if (api_direct.empty()) {
    std::printf("API variant: no successful run (%d failures)\n", api_failures);
    return 1;
  }
  Stats ad = Summarize(api_direct), aj = Summarize(api_jailed);
  Print("direct", ad, api_direct.size());
  Print("jailed", aj, api_jailed.size());
  std::vector<double> adiff;
  for (size_t k = 0; k < api_direct.size(); ++k) adiff.push_back(api_jailed[k] - api_direct[k]);
  Stats sad = Summarize(adiff);
  std::printf("summary: jailer adds %.2f ms to the API answering (p10 %.2f, p90 %.2f); target under 10 ms: %s\n",
              sad.median, sad.p10, sad.p90, sad.median < 10 ? "met" : "missed");
  std::printf("failures: %d\n", api_failures);
  return failures || api_failures ? 1 : 0;
}
