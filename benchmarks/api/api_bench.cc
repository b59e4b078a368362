// API latency and the VMM's share of a boot, measured on a real `hearth --api-sock` process:
//   - GET / and PUT /machine-config: p50 / p99 / max over N requests (each on its own
//     connection, as the server closes after every response);
//   - InstanceStart received -> the guest's first instructions (the tiny `hello` guest writes
//     the boot-timer port first thing), from the VMM's own metrics, over R fresh processes;
//   - optionally (--linux KERNEL [--initrd F]) InstanceStart -> the guest agent's ready marker.
// Usage: hearth_api_bench [--requests N] [--runs R] [--linux vmlinux --initrd initramfs]
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Response {
  int status = 0;
  std::string body;
};

int Connect(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

Response Call(const std::string& sock, const std::string& method, const std::string& path, const std::string& body = "") {
  Response r;
  int fd = Connect(sock);
  if (fd < 0) return r;
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: x\r\n";
  if (!body.empty()) req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string raw;
  char buf[8192];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
    size_t end = raw.find("\r\n\r\n");
    if (end == std::string::npos) continue;
    size_t length = 0;
    if (auto p = raw.find("Content-Length: "); p != std::string::npos && p < end) length = std::stoul(raw.substr(p + 16));
    if (raw.size() >= end + 4 + length) {
      r.body = raw.substr(end + 4, length);
      break;
    }
  }
  ::close(fd);
  if (raw.size() > 12) r.status = std::atoi(raw.c_str() + 9);
  return r;
}

struct Vmm {
  pid_t pid = -1;
  std::string sock;
  Vmm(const std::string& binary, const std::string& dir, int index) {
    sock = dir + "/bench" + std::to_string(index) + ".sock";
    std::fflush(stdout);  // The child's freopen would flush our buffer a second time.
    pid = ::fork();
    if (pid == 0) {
      freopen("/dev/null", "w", stdout);
      freopen("/dev/null", "w", stderr);
      execl(binary.c_str(), binary.c_str(), "--api-sock", sock.c_str(), "--level", "Warning", nullptr);
      _exit(127);
    }
    for (int i = 0; i < 2000; ++i) {
      int fd = Connect(sock);
      if (fd >= 0) {
        ::close(fd);
        return;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  }
  ~Vmm() {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::unlink(sock.c_str());
  }
};

void Report(const char* what, std::vector<double> us) {
  if (us.empty()) {
    std::printf("%-44s no samples\n", what);
    return;
  }
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) { return us[std::min(us.size() - 1, static_cast<size_t>(p * us.size()))]; };
  std::printf("%-44s n=%-6zu p50 %9.1f us  p90 %9.1f us  p99 %9.1f us  max %9.1f us\n", what, us.size(), pct(0.5),
              pct(0.9), pct(0.99), us.back());
}

}  // namespace

int main(int argc, char** argv) {
  int requests = 10000;
  int runs = 20;
  std::string linux_kernel, initrd;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--requests") requests = std::atoi(argv[i + 1]);
    else if (a == "--runs") runs = std::atoi(argv[i + 1]);
    else if (a == "--linux") linux_kernel = argv[i + 1];
    else if (a == "--initrd") initrd = argv[i + 1];
  }
  char tmpl[] = "/tmp/hearth_api_bench_XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  std::printf("hearth API benchmark: %d requests per endpoint, %d boots\n", requests, runs);
  std::fflush(stdout);
  {
    Vmm vmm(HEARTH_BINARY, dir, 0);
    std::vector<double> get_us, put_us;
    int bad = 0;
    for (int i = 0; i < requests; ++i) {
      auto t0 = Clock::now();
      Response r = Call(vmm.sock, "GET", "/");
      get_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      if (r.status != 200) ++bad;
      t0 = Clock::now();
      r = Call(vmm.sock, "PUT", "/machine-config", R"({"vcpu_count":1,"mem_size_mib":128})");
      put_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      if (r.status != 204) ++bad;
    }
    Report("GET / (connect + request + response)", get_us);
    Report("PUT /machine-config", put_us);
    if (bad) std::printf("  %d requests failed\n", bad);
  }
  std::vector<double> start_to_guest, request_us;
  for (int i = 0; i < runs; ++i) {
    Vmm vmm(HEARTH_BINARY, dir, i + 1);
    std::string metrics = dir + "/m" + std::to_string(i) + ".json";
    Call(vmm.sock, "PUT", "/metrics", json{{"metrics_path", metrics}}.dump());
    Call(vmm.sock, "PUT", "/boot-source", json{{"kernel_image_path", HEARTH_GUEST_COUNTER}}.dump());
    Call(vmm.sock, "PUT", "/machine-config", R"({"vcpu_count":1,"mem_size_mib":128})");
    auto t0 = Clock::now();
    Response r = Call(vmm.sock, "PUT", "/actions", R"({"action_type":"InstanceStart"})");
    request_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (r.status != 204) {
      std::printf("InstanceStart failed: %d %s\n", r.status, r.body.c_str());
      continue;
    }
    for (int tries = 0; tries < 200; ++tries) {
      Call(vmm.sock, "PUT", "/actions", R"({"action_type":"FlushMetrics"})");
      std::ifstream in(metrics);
      std::string line, last;
      while (std::getline(in, line)) last = line;
      auto j = json::parse(last, nullptr, false);
      if (!j.is_discarded() && j["boot"].contains("boot_signal_since_instance_start_us")) {
        start_to_guest.push_back(j["boot"]["boot_signal_since_instance_start_us"].get<double>());
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  Report("InstanceStart request round trip", request_us);
  Report("InstanceStart -> first guest instructions", start_to_guest);
  if (!linux_kernel.empty()) {
    Vmm vmm(HEARTH_BINARY, dir, 999);
    json boot{{"kernel_image_path", linux_kernel}};
    if (!initrd.empty()) boot["initrd_path"] = initrd;
    Call(vmm.sock, "PUT", "/boot-source", boot.dump());
    std::string metrics = dir + "/linux.json";
    Call(vmm.sock, "PUT", "/metrics", json{{"metrics_path", metrics}}.dump());
    Call(vmm.sock, "PUT", "/actions", R"({"action_type":"InstanceStart"})");
    for (int tries = 0; tries < 600; ++tries) {
      Call(vmm.sock, "PUT", "/actions", R"({"action_type":"FlushMetrics"})");
      std::ifstream in(metrics);
      std::string line, last;
      while (std::getline(in, line)) last = line;
      auto j = json::parse(last, nullptr, false);
      if (!j.is_discarded() && j["boot"].contains("boot_signal_since_instance_start_us")) {
        std::printf("InstanceStart -> Linux guest agent ready        %.1f ms\n",
                    j["boot"]["boot_signal_since_instance_start_us"].get<double>() / 1000);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }
  std::printf("targets: config call p99 < 1000 us; InstanceStart -> first guest instruction < 5000 us\n");
  std::string cleanup = "rm -rf " + dir;
  return std::system(cleanup.c_str()) == 0 ? 0 : 1;
}
