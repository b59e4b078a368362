// Snapshots through the REST API, as an orchestrator drives them: process A boots the counter
// guest, pauses and snapshots it; fresh processes load the snapshot and the guest counts on.
// Bad loads and creates answer 400 with a clear fault and the process keeps serving.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/api_client.h"
#include "tests/support/temp_dir.h"

namespace hearth::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
using nlohmann::json;

std::string Quote(const std::string& s) { return json(s).dump(); }

std::string FaultOf(const HttpResponse& r) {
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.contains("fault_message") || !j["fault_message"].is_string()) return "<no fault_message>";
  return j["fault_message"].get<std::string>();
}

#define EXPECT_STATUS(resp, code) EXPECT_EQ((resp).status, code) << (resp).Describe()
#define ASSERT_STATUS(resp, code) ASSERT_EQ((resp).status, code) << (resp).Describe()
#define EXPECT_FAULT(resp, fragment)                               \
  do {                                                             \
    HttpResponse r_ = (resp);                                      \
    EXPECT_EQ(r_.status, 400) << r_.Describe();                    \
    EXPECT_THAT(FaultOf(r_), HasSubstr(fragment)) << r_.Describe(); \
  } while (0)

constexpr const char* kMachine = R"({"vcpu_count":1,"mem_size_mib":32})";

// The "count N" values of complete lines, in order.
std::vector<long> Counts(const std::string& out) {
  static const std::regex kCount("count ([0-9]+)\n");
  std::vector<long> counts;
  for (auto it = std::sregex_iterator(out.begin(), out.end(), kCount); it != std::sregex_iterator(); ++it) {
    counts.push_back(std::stol((*it)[1]));
  }
  return counts;
}

std::string State(const HearthApiProcess& vmm) {
  auto j = json::parse(vmm.Call("GET", "/").body, nullptr, false);
  return j.is_discarded() ? "<bad body>" : j.value("state", "<no state>");
}

std::string CreateBody(const std::string& state, const std::string& mem) {
  return R"({"snapshot_type":"Full","snapshot_path":)" + Quote(state) + R"(,"mem_file_path":)" + Quote(mem) + "}";
}

std::string LoadBody(const std::string& state, const std::string& mem, bool resume = true) {
  return R"({"snapshot_path":)" + Quote(state) + R"(,"mem_backend":{"backend_type":"File","backend_path":)" +
         Quote(mem) + R"(},"resume_vm":)" + (resume ? "true" : "false") + "}";
}

class ApiSnapshotTest : public ::testing::Test {
 protected:
  // Process A: boots the counter (with a scratch drive at `drive` when given), lets it count to
  // 5, pauses and snapshots; A's console output.
  void SnapshotCounter(const std::string& drive = "") {
    HearthApiProcess a(dir_, {}, "a.sock");
    ASSERT_TRUE(a.ready()) << a.Stderr();
    ASSERT_EQ(a.Call("PUT", "/boot-source",
                     R"({"kernel_image_path":)" + Quote(HEARTH_GUEST_COUNTER) + R"(,"boot_args":"console=ttyS0"})")
                  .status,
              204);
    ASSERT_EQ(a.Call("PUT", "/machine-config", kMachine).status, 204);
    if (!drive.empty()) {
      ASSERT_EQ(a.Call("PUT", "/drives/scratch",
                       R"({"drive_id":"scratch","path_on_host":)" + Quote(drive) +
                           R"(,"is_root_device":false,"is_read_only":false})")
                    .status,
                204);
    }
    ASSERT_EQ(a.Call("PUT", "/actions", R"({"action_type":"InstanceStart"})").status, 204);
    ASSERT_TRUE(a.WaitForOutput("count 5\n", 30s)) << a.Stdout() << a.Stderr();
    // Refused while running; nothing is written.
    EXPECT_FAULT(a.Call("PUT", "/snapshot/create", CreateBody(state_, mem_)), "must be Paused");
    EXPECT_FALSE(std::filesystem::exists(state_));
    ASSERT_EQ(a.Call("PATCH", "/vm", R"({"state":"Paused"})").status, 204);
    EXPECT_EQ(State(a), "Paused");
    HttpResponse created = a.Call("PUT", "/snapshot/create", CreateBody(state_, mem_));
    ASSERT_EQ(created.status, 204) << created.Describe() << a.Stderr();
    ASSERT_TRUE(std::filesystem::exists(state_));
    ASSERT_TRUE(std::filesystem::exists(mem_));
    EXPECT_EQ(std::filesystem::file_size(mem_), 32u << 20);
    before_ = a.Stdout();
    a.Kill();
  }

  // The console of A followed by a clone's is one unbroken count, with one "counter start".
  void ExpectContinues(const std::string& after) const {
    EXPECT_EQ(after.find("counter start"), std::string::npos) << "the clone rebooted:\n" << after;
    std::vector<long> all = Counts(before_ + after);
    ASSERT_GE(all.size(), 8u);
    for (size_t i = 1; i < all.size(); ++i) {
      ASSERT_EQ(all[i], all[i - 1] + 1) << "count jumps at " << i << "\nbefore:\n" << before_ << "\nafter:\n" << after;
    }
  }

  TempDir dir_;
  std::string state_ = dir_.path() + "/vm.snap";
  std::string mem_ = dir_.path() + "/vm.mem";
  std::string before_;
};

TEST_F(ApiSnapshotTest, LoadInAFreshProcessContinuesTheCount) {
  ASSERT_NO_FATAL_FAILURE(SnapshotCounter());
  const long last = Counts(before_).back();
  HearthApiProcess b(dir_, {}, "b.sock");
  ASSERT_TRUE(b.ready()) << b.Stderr();
  HttpResponse loaded = b.Call("PUT", "/snapshot/load", LoadBody(state_, mem_));
  ASSERT_EQ(loaded.status, 204) << loaded.Describe() << b.Stderr();
  EXPECT_EQ(State(b), "Running");
  ASSERT_TRUE(b.WaitForOutput("count " + std::to_string(last + 3) + "\n", 30s)) << b.Stdout() << b.Stderr();
  ExpectContinues(b.Stdout());
  // A loaded VM pauses and resumes like a booted one.
  EXPECT_STATUS(b.Call("PATCH", "/vm", R"({"state":"Paused"})"), 204);
  EXPECT_EQ(State(b), "Paused");
  EXPECT_STATUS(b.Call("PATCH", "/vm", R"({"state":"Resumed"})"), 204);
  EXPECT_EQ(State(b), "Running");
}

TEST_F(ApiSnapshotTest, TwoClonesFromOneSnapshotRunIndependently) {
  ASSERT_NO_FATAL_FAILURE(SnapshotCounter());
  const long last = Counts(before_).back();
  HearthApiProcess c1(dir_, {}, "c1.sock");
  HearthApiProcess c2(dir_, {}, "c2.sock");
  ASSERT_TRUE(c1.ready() && c2.ready());
  ASSERT_STATUS(c1.Call("PUT", "/snapshot/load", LoadBody(state_, mem_)), 204);
  // The second clone loads paused: the first runs on regardless.
  ASSERT_STATUS(c2.Call("PUT", "/snapshot/load", LoadBody(state_, mem_, /*resume=*/false)), 204);
  EXPECT_EQ(State(c2), "Paused");
  ASSERT_TRUE(c1.WaitForOutput("count " + std::to_string(last + 5) + "\n", 30s)) << c1.Stdout();
  EXPECT_THAT(Counts(c2.Stdout()), ::testing::IsEmpty()) << "the paused clone ran";
  EXPECT_STATUS(c2.Call("PATCH", "/vm", R"({"state":"Resumed"})"), 204);
  ASSERT_TRUE(c2.WaitForOutput("count " + std::to_string(last + 2) + "\n", 30s)) << c2.Stdout();
  // Pausing one leaves the other running.
  EXPECT_STATUS(c1.Call("PATCH", "/vm", R"({"state":"Paused"})"), 204);
  const long c2_at = Counts(c2.Stdout()).back();
  ASSERT_TRUE(c2.WaitForOutput("count " + std::to_string(c2_at + 2) + "\n", 30s)) << c2.Stdout();
  ExpectContinues(c1.Stdout());
  ExpectContinues(c2.Stdout());
}

TEST_F(ApiSnapshotTest, BadLoadsAreRefusedAndTheProcessKeepsServing) {
  ASSERT_NO_FATAL_FAILURE(SnapshotCounter());
  const std::string truncated = dir_.path() + "/truncated.snap";
  {
    std::ifstream in(state_, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  HearthApiProcess c(dir_, {}, "c.sock");
  ASSERT_TRUE(c.ready());
  EXPECT_FAULT(c.Call("PUT", "/snapshot/load", LoadBody(truncated, mem_)), "truncated");
  EXPECT_FAULT(c.Call("PUT", "/snapshot/load", LoadBody(dir_.path() + "/absent.snap", mem_)), "absent.snap");
  EXPECT_FAULT(c.Call("PUT", "/snapshot/load", LoadBody(state_, dir_.path() + "/absent.mem")), "absent.mem");
  EXPECT_TRUE(c.Running());
  EXPECT_EQ(c.Call("GET", "/").status, 200);
  // No partial VM was left behind: the good snapshot still loads into the same process.
  ASSERT_STATUS(c.Call("PUT", "/snapshot/load", LoadBody(state_, mem_)), 204);
  EXPECT_EQ(State(c), "Running");
  ASSERT_TRUE(c.WaitForOutput("count " + std::to_string(Counts(before_).back() + 2) + "\n", 30s)) << c.Stdout();

  // A load after configuring is refused.
  HearthApiProcess d(dir_, {}, "d.sock");
  ASSERT_TRUE(d.ready());
  EXPECT_STATUS(d.Call("PUT", "/machine-config", kMachine), 204);
  EXPECT_FAULT(d.Call("PUT", "/snapshot/load", LoadBody(state_, mem_)), "not allowed after configuring");
  EXPECT_EQ(d.Call("GET", "/").status, 200);
}

// The snapshot names a drive whose backing file has gone since: the load is refused naming the
// file, nothing half-built is left (the same process loads once the file is back).
TEST_F(ApiSnapshotTest, LoadWithADriveWhoseBackingFileIsGoneIsRefused) {
  const std::string drive = dir_.path() + "/scratch.img";
  std::ofstream(drive, std::ios::binary) << std::string(1 << 20, '\0');
  ASSERT_NO_FATAL_FAILURE(SnapshotCounter(drive));
  std::filesystem::rename(drive, drive + ".away");

  HearthApiProcess c(dir_, {}, "c.sock");
  ASSERT_TRUE(c.ready());
  EXPECT_FAULT(c.Call("PUT", "/snapshot/load", LoadBody(state_, mem_)), "scratch.img");
  EXPECT_TRUE(c.Running());
  EXPECT_EQ(State(c), "Not started");

  std::filesystem::rename(drive + ".away", drive);
  ASSERT_STATUS(c.Call("PUT", "/snapshot/load", LoadBody(state_, mem_)), 204);
  EXPECT_EQ(State(c), "Running");
  ASSERT_TRUE(c.WaitForOutput("count " + std::to_string(Counts(before_).back() + 2) + "\n", 30s)) << c.Stdout();
  ExpectContinues(c.Stdout());
}

}  // namespace
}  // namespace hearth::testing
