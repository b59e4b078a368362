// Fault injection against the hearth binary with tiny guests: the host pulls the ground from
// under a running VM and the VM and VMM must behave as README.md "Failure behaviour" says.
//
//   - kill -9 of the VMM while its guest writes: every block the guest saw flushed reads back;
//   - the disk image deleted, or truncated, under the VM: IOERR or correct data, a log line;
//   - the host file system holding the image full: IOERR to the guest, a log line, and writes
//     work again once there is space;
//   - the tap deleted under the VM: the VMM keeps running without spinning;
//   - API clients that hang up mid-request or before reading the answer: the next one is served
//     and no fd is left behind.
// The block tests run tests/guests/virtio_blk_log.S, which prints one line per block it wrote,
// flushed and read back. Labels kvm and integration.

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/api_client.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace hearth::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr size_t kBlockBytes = 4096;

// The guest's pattern for block line i: dword k is 0x5a000000 + (i << 12) + k (mod 2^32).
std::string Pattern(uint32_t i) {
  std::string p(kBlockBytes, '\0');
  for (uint32_t k = 0; k < kBlockBytes / 4; ++k) {
    const uint32_t v = 0x5a000000u + (i << 12) + k;
    for (int b = 0; b < 4; ++b) p[k * 4 + b] = static_cast<char>(v >> (8 * b));
  }
  return p;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// One "blk <i> w=<s> f=<s> r=<s> data=<ok|bad> last=<s>" line of the guest.
struct BlkLine {
  uint32_t i = 0;
  std::string w, f, r, data, last;
  size_t end = 0;  // Offset just past the line in the console output.
  bool Durable() const { return w == "0" && f == "0"; }
  bool AllOk() const { return w == "0" && f == "0" && r == "0" && data == "ok" && last == "0"; }
  std::string Str() const {
    return "blk " + std::to_string(i) + " w=" + w + " f=" + f + " r=" + r + " data=" + data +
           " last=" + last;
  }
};

std::vector<BlkLine> BlkLines(const std::string& out) {
  static const std::regex kLine("blk ([0-9]+) w=(\\w+) f=(\\w+) r=(\\w+) data=(\\w+) last=(\\w+)\n");
  std::vector<BlkLine> lines;
  for (auto it = std::sregex_iterator(out.begin(), out.end(), kLine); it != std::sregex_iterator();
       ++it) {
    const std::smatch& m = *it;
    lines.push_back({static_cast<uint32_t>(std::stoul(m[1])), m[2], m[3], m[4], m[5], m[6],
                     static_cast<size_t>(m.position(0) + m.length(0))});
  }
  return lines;
}

// Writes vm.json for the virtio_blk_log guest on `image` and returns its path.
std::string BlkConfig(const TempDir& dir, const std::string& image, const std::string& engine,
                      const std::string& boot_args = "console=ttyS0") {
  const std::string json =
      R"({"boot-source": {"kernel_image_path": ")" HEARTH_GUEST_VIRTIO_BLK_LOG R"(", "boot_args": ")" +
      boot_args + R"("}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 32},
 "drives": [{"drive_id": "disk0", "path_on_host": ")" + image +
      R"(", "is_root_device": false, "is_read_only": false, "cache_type": "Writeback", "io_engine": ")" +
      engine + R"("}]})";
  return dir.Write("vm.json", json);
}

// Waits until the guest printed a line for block `i` (or later); false on timeout or exit.
bool WaitForBlock(HearthApiProcess& vmm, uint32_t i, std::chrono::seconds timeout = 60s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto lines = BlkLines(vmm.Stdout());
    if (!lines.empty() && lines.back().i >= i) return true;
    if (!vmm.Running()) return false;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// SIGTERM: the VMM stops cleanly with 128 + SIGTERM.
void ExpectCleanStop(HearthApiProcess& vmm) {
  ASSERT_TRUE(vmm.Running()) << vmm.Stderr();
  ::kill(vmm.pid(), SIGTERM);
  EXPECT_EQ(vmm.Wait(20s), std::optional<int>(128 + SIGTERM)) << vmm.Stderr();
}

// ---- kill -9 mid-write -------------------------------------------------------------------------

class KillMidWrite : public ::testing::TestWithParam<const char*> {};

TEST_P(KillMidWrite, EveryBlockTheGuestSawFlushedReadsBack) {
  TempDir dir;
  const std::string image = dir.Write("disk.img", std::string(1 << 20, '\0'));  // 256 blocks.
  HearthApiProcess vmm(dir, {"--config-file", BlkConfig(dir, image, GetParam())});
  ASSERT_TRUE(vmm.ready()) << vmm.Stderr();
  ASSERT_TRUE(WaitForBlock(vmm, 24)) << vmm.Stdout() << vmm.Stderr();
  // Somewhere inside the next block's write/flush/read.
  std::this_thread::sleep_for(std::chrono::milliseconds(std::rand() % 40));
  ::kill(vmm.pid(), SIGKILL);
  EXPECT_EQ(vmm.Wait(10s), std::optional<int>(128 + SIGKILL));

  const std::vector<BlkLine> lines = BlkLines(vmm.Stdout());
  const std::string after = ReadFile(image);
  ASSERT_EQ(after.size(), size_t{1} << 20);
  size_t checked = 0;
  for (const BlkLine& line : lines) {
    EXPECT_TRUE(line.AllOk()) << line.Str();
    if (!line.Durable()) continue;
    ASSERT_LT(line.i, 256u) << "the guest wrapped around the disk";
    EXPECT_TRUE(after.compare(line.i * kBlockBytes, kBlockBytes, Pattern(line.i)) == 0)
        << "block " << line.i << " was reported flushed but does not read back";
    ++checked;
  }
  EXPECT_GE(checked, 25u);
  // Blocks the guest never reached are untouched (zeros), except the one in flight at the kill.
  const size_t stray = after.find_first_not_of('\0', (checked + 1) * kBlockBytes);
  EXPECT_EQ(stray, std::string::npos) << "byte " << stray << " written past the guest's last block";
}

INSTANTIATE_TEST_SUITE_P(Engines, KillMidWrite, ::testing::Values("Sync", "Async"));

// ---- the image deleted or truncated under the VM ---------------------------------------------

class ImageUnderVm : public ::testing::TestWithParam<const char*> {};

TEST_P(ImageUnderVm, DeletedImageKeepsServingCorrectDataAndIsLogged) {
  TempDir dir;
  const std::string image = dir.Write("disk.img", std::string(1 << 20, '\0'));
  HearthApiProcess vmm(dir, {"--config-file", BlkConfig(dir, image, GetParam())});
  ASSERT_TRUE(vmm.ready()) << vmm.Stderr();
  ASSERT_TRUE(WaitForBlock(vmm, 3)) << vmm.Stdout() << vmm.Stderr();
  ASSERT_EQ(::unlink(image.c_str()), 0);
  const uint32_t deleted_at = BlkLines(vmm.Stdout()).back().i;
  ASSERT_TRUE(WaitForBlock(vmm, deleted_at + 8)) << vmm.Stdout() << vmm.Stderr();
  // The open file lives on: every write, flush and read back still succeeds.
  for (const BlkLine& line : BlkLines(vmm.Stdout())) EXPECT_TRUE(line.AllOk()) << line.Str();
  EXPECT_THAT(vmm.Stderr(), HasSubstr("virtio-blk disk0: image " + image +
                                      " was deleted on the host; the guest's writes go to the "
                                      "unlinked file and are lost when the VMM exits"));
  ExpectCleanStop(vmm);
}

TEST_P(ImageUnderVm, TruncatedImageAnswersIoErrPastItsEndAndCorrectDataElsewhere) {
  TempDir dir;
  const std::string image = dir.Write("disk.img", std::string(1 << 20, '\0'));
  HearthApiProcess vmm(dir, {"--config-file", BlkConfig(dir, image, GetParam())});
  ASSERT_TRUE(vmm.ready()) << vmm.Stderr();
  ASSERT_TRUE(WaitForBlock(vmm, 3)) << vmm.Stdout() << vmm.Stderr();
  for (const BlkLine& line : BlkLines(vmm.Stdout())) ASSERT_TRUE(line.AllOk()) << line.Str();
  ASSERT_EQ(::truncate(image.c_str(), 0), 0);
  const uint32_t truncated_at = BlkLines(vmm.Stdout()).back().i;
  ASSERT_TRUE(WaitForBlock(vmm, truncated_at + 8)) << vmm.Stdout() << vmm.Stderr();
  size_t after = 0;
  for (const BlkLine& line : BlkLines(vmm.Stdout())) {
    // Never a lost request, never wrong data reported as OK.
    EXPECT_NE(line.w, "t") << line.Str();
    EXPECT_NE(line.r, "t") << line.Str();
    EXPECT_NE(line.last, "t") << line.Str();
    if (line.r == "0") {
      EXPECT_EQ(line.data, "ok") << line.Str();
    }
    if (line.i <= truncated_at + 1) continue;  // The line in flight at the truncation.
    ++after;
    // The write re-extends the file up to the block: it reads back. The disk's last 4 KiB lie
    // past the new end: IOERR.
    EXPECT_EQ(line.w, "0") << line.Str();
    EXPECT_EQ(line.r, "0") << line.Str();
    EXPECT_EQ(line.data, "ok") << line.Str();
    EXPECT_EQ(line.last, "1") << line.Str();
  }
  EXPECT_GE(after, 5u);
  EXPECT_THAT(vmm.Stderr(), HasSubstr("virtio-blk disk0: image " + image + " shrank to "));
  EXPECT_THAT(vmm.Stderr(), HasSubstr("Input/output error"));
  ExpectCleanStop(vmm);
}

INSTANTIATE_TEST_SUITE_P(Engines, ImageUnderVm, ::testing::Values("Sync", "Async"));

// ---- the host file system full -----------------------------------------------------------------

// A private mount namespace for this test process (and the hearth it starts), with a small
// tmpfs: nothing outlives the test even if it crashes.
class SmallTmpfs {
 public:
  SmallTmpfs(const std::string& dir, const char* options) : dir_(dir) {
    ::mkdir(dir.c_str(), 0700);
    if (::unshare(CLONE_NEWNS) != 0) {
      error_ = std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
      return;
    }
    if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      error_ = std::string("mount --make-rprivate /: ") + std::strerror(errno);
      return;
    }
    if (::mount("hearth-fault", dir.c_str(), "tmpfs", 0, options) != 0) {
      error_ = std::string("mount tmpfs: ") + std::strerror(errno);
      return;
    }
    mounted_ = true;
  }
  ~SmallTmpfs() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  const std::string& error() const { return error_; }

 private:
  std::string dir_;
  std::string error_;
  bool mounted_ = false;
};

class FullDisk : public ::testing::TestWithParam<const char*> {};

TEST_P(FullDisk, WritesFailWithIoErrAndWorkAgainOnceThereIsSpace) {
  TempDir dir;
  const std::string mnt = dir.Path("mnt");
  SmallTmpfs fs(mnt, "size=128k");
  ASSERT_EQ(fs.error(), "") << "the test needs root";
  const std::string filler = mnt + "/filler";
  {
    std::ofstream f(filler, std::ios::binary);
    f << std::string(64 * 1024, 'x');
    ASSERT_TRUE(f.good());
  }
  // A 4 MiB sparse image on a file system with 64 KiB left.
  const std::string image = mnt + "/disk.img";
  {
    std::ofstream f(image, std::ios::binary);
  }
  ASSERT_EQ(::truncate(image.c_str(), 4 << 20), 0);

  HearthApiProcess vmm(dir, {"--config-file", BlkConfig(dir, image, GetParam())});
  ASSERT_TRUE(vmm.ready()) << vmm.Stderr();
  auto first_failed_write = [&]() -> std::optional<BlkLine> {
    for (const BlkLine& line : BlkLines(vmm.Stdout()))
      if (line.w != "0") return line;
    return std::nullopt;
  };
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  while (!first_failed_write() && vmm.Running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  const std::optional<BlkLine> failed = first_failed_write();
  ASSERT_TRUE(failed) << "no write failed on a full file system\n" << vmm.Stdout() << vmm.Stderr();
  EXPECT_EQ(failed->w, "1") << failed->Str();  // IOERR, not a lost request.
  EXPECT_GE(failed->i, 8u) << "the first blocks fit";
  EXPECT_THAT(vmm.Stderr(), HasSubstr("virtio-blk disk0: "));
  EXPECT_THAT(vmm.Stderr(), HasSubstr("No space left on device"));
  ASSERT_TRUE(vmm.Running());
  // Everything written before the disk filled reads back.
  for (const BlkLine& line : BlkLines(vmm.Stdout())) {
    if (line.i >= failed->i) break;
    EXPECT_TRUE(line.AllOk()) << line.Str();
  }

  // Make room: the guest's writes succeed again.
  ASSERT_EQ(::unlink(filler.c_str()), 0);
  const uint32_t freed_at = BlkLines(vmm.Stdout()).back().i;
  ASSERT_TRUE(WaitForBlock(vmm, freed_at + 4)) << vmm.Stdout() << vmm.Stderr();
  const BlkLine last = BlkLines(vmm.Stdout()).back();
  EXPECT_TRUE(last.Durable() && last.data == "ok") << last.Str();
  ExpectCleanStop(vmm);
}

INSTANTIATE_TEST_SUITE_P(Engines, FullDisk, ::testing::Values("Sync", "Async"));

// ---- the tap deleted under the VM --------------------------------------------------------------

int Shell(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

// CPU seconds (user + system) of the process's threads that are not vCPUs.
double NonVcpuCpuSeconds(pid_t pid) {
  double ticks = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    const std::string stat = ReadFile(task.path().string() + "/stat");
    const size_t open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    if (stat.substr(open + 1, close - open - 1).rfind("fc_vcpu", 0) == 0) continue;
    std::istringstream rest(stat.substr(close + 2));
    std::string field;
    unsigned long utime = 0, stime = 0;
    for (int n = 3; rest >> field; ++n) {
      if (n == 14) utime = std::stoul(field);
      if (n == 15) {
        stime = std::stoul(field);
        break;
      }
    }
    ticks += static_cast<double>(utime + stime);
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

TEST(TapFault, DeletedTapLeavesTheVmmRunningWithoutSpinning) {
  TempDir dir;
  const std::string tap = "hflt" + std::to_string(::getpid() % 100000);
  Shell("ip link del " + tap);
  const std::string json =
      R"({"boot-source": {"kernel_image_path": ")" HEARTH_GUEST_COUNTER
      R"(", "boot_args": "console=ttyS0"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 32},
 "network-interfaces": [{"iface_id": "eth0", "host_dev_name": ")" + tap + R"("}]})";
  HearthApiProcess vmm(dir, {"--config-file", dir.Write("vm.json", json)});
  ASSERT_TRUE(vmm.ready()) << vmm.Stderr();
  ASSERT_TRUE(vmm.WaitForOutput("count 3\n", 30s)) << vmm.Stderr();
  ASSERT_TRUE(std::filesystem::exists("/sys/class/net/" + tap)) << "hearth did not create the tap";
  ASSERT_EQ(Shell("ip link set " + tap + " up"), 0);
  ASSERT_EQ(Shell("ip link del " + tap), 0);
  ASSERT_FALSE(std::filesystem::exists("/sys/class/net/" + tap));
  const double cpu0 = NonVcpuCpuSeconds(vmm.pid());
  std::this_thread::sleep_for(3s);
  const double cpu = NonVcpuCpuSeconds(vmm.pid()) - cpu0;
  EXPECT_LT(cpu, 0.3) << "the VMM's non-vCPU threads used " << cpu << " s of CPU in 3 s";
  // The guest goes on and the API answers.
  const std::string out = vmm.Stdout();
  const size_t count_lines = std::count(out.begin(), out.end(), '\n');
  std::this_thread::sleep_for(500ms);
  const std::string later = vmm.Stdout();
  EXPECT_GT(static_cast<size_t>(std::count(later.begin(), later.end(), '\n')), count_lines);
  EXPECT_EQ(vmm.Call("GET", "/").status, 200);
  ExpectCleanStop(vmm);
}

// ---- API clients that hang up ------------------------------------------------------------------

size_t OpenFds(pid_t pid) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
    ++n;
  return n;
}

TEST(ApiFault, ClientsHangingUpMidRequestOrBeforeTheAnswerLeaveTheVmmServing) {
  TempDir dir;
  HearthApiProcess vmm(dir);
  ASSERT_TRUE(vmm.ready()) << vmm.Stderr();
  ASSERT_EQ(vmm.Call("GET", "/").status, 200);
  const size_t fds_before = OpenFds(vmm.pid());
  const std::string body = R"({"vcpu_count": 2, "mem_size_mib": 64})";
  const std::string request = "PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Type: "
                              "application/json\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
  for (int round = 0; round < 20; ++round) {
    // Half the request line, half the headers, half the body: then gone.
    for (size_t cut : {size_t{10}, request.find("\r\n\r\n"), request.size() - 5}) {
      int fd = ConnectUnix(vmm.socket());
      ASSERT_GE(fd, 0);
      ASSERT_GT(::send(fd, request.data(), cut, MSG_NOSIGNAL), 0);
      ::close(fd);
    }
    // The whole request, then gone before the answer.
    int fd = ConnectUnix(vmm.socket());
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
  }
  // The next client is served, and the abandoned complete requests took effect.
  HttpResponse r = vmm.Call("GET", "/machine-config");
  EXPECT_EQ(r.status, 200) << r.Describe();
  EXPECT_THAT(r.body, HasSubstr("\"mem_size_mib\":64"));
  EXPECT_EQ(vmm.Call("PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 32})").status, 204);
  // No connection is left open in the VMM.
  size_t fds_after = OpenFds(vmm.pid());
  for (int i = 0; i < 50 && fds_after != fds_before; ++i) {
    std::this_thread::sleep_for(100ms);
    fds_after = OpenFds(vmm.pid());
  }
  EXPECT_EQ(fds_after, fds_before);
  ExpectCleanStop(vmm);
}

}  // namespace
}  // namespace hearth::testing
