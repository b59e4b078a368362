// The REST API end to end: a real hearth process on a UNIX socket, driven with requests as an
// orchestrator would send them (and as a broken or hostile client would). Tiny test guests
// (tests/guests) make the VM's side observable: the counter guest prints "count N" lines.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "tests/support/api_client.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace hearth::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
using nlohmann::json;

std::string Quote(const std::string& s) { return json(s).dump(); }

std::string BootSource(const std::string& kernel) {
  return R"({"kernel_image_path":)" + Quote(kernel) + R"(,"boot_args":"console=ttyS0"})";
}

constexpr const char* kSmallMachine = R"({"vcpu_count":1,"mem_size_mib":32})";

// The highest "count N" the counter guest printed so far, or -1.
long LastCount(const std::string& out) {
  static const std::regex kCount("count ([0-9]+)\n");
  long last = -1;
  for (auto it = std::sregex_iterator(out.begin(), out.end(), kCount); it != std::sregex_iterator(); ++it) {
    last = std::stol((*it)[1]);
  }
  return last;
}

std::string FaultOf(const HttpResponse& r) {
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.contains("fault_message") || !j["fault_message"].is_string()) return "<no fault_message>";
  return j["fault_message"].get<std::string>();
}

#define EXPECT_STATUS(resp, code) EXPECT_EQ((resp).status, code) << (resp).Describe()
#define EXPECT_FAULT(resp, fragment)                               \
  do {                                                             \
    HttpResponse r_ = (resp);                                      \
    EXPECT_EQ(r_.status, 400) << r_.Describe();                    \
    EXPECT_THAT(FaultOf(r_), HasSubstr(fragment)) << r_.Describe(); \
  } while (0)

// Configures the counter guest and starts it.
void StartCounter(const HearthApiProcess& vmm) {
  ASSERT_EQ(vmm.Call("PUT", "/boot-source", BootSource(HEARTH_GUEST_COUNTER)).status, 204);
  ASSERT_EQ(vmm.Call("PUT", "/machine-config", kSmallMachine).status, 204);
  HttpResponse start = vmm.Call("PUT", "/actions", R"({"action_type":"InstanceStart"})");
  ASSERT_EQ(start.status, 204) << start.Describe();
  ASSERT_TRUE(vmm.WaitForOutput("count 3\n", 30s)) << vmm.Stdout() << vmm.Stderr();
}

TEST(Api, GettingStartedSequenceBootsTheGuest) {
  TempDir dir;
  HearthApiProcess vmm(dir);
  ASSERT_TRUE(vmm.ready()) << vmm.Stderr();
  HttpResponse info = vmm.Call("GET", "/");
  ASSERT_EQ(info.status, 200) << info.Describe();
  json j = json::parse(info.body);
  EXPECT_EQ(j["state"], "Not started");
  EXPECT_EQ(j["id"], "anonymous-instance");
  EXPECT_STATUS(vmm.Call("PUT", "/logger", R"({"log_path":)" + Quote(dir.Path("log")) + R"(,"level":"Info"})"), 204);
  StartCounter(vmm);
  EXPECT_EQ(json::parse(vmm.Call("GET", "/").body)["state"], "Running");
  // The guest keeps running while the API answers.
  long before = LastCount(vmm.Stdout());
  for (int i = 0; i < 20; ++i) EXPECT_STATUS(vmm.Call("GET", "/machine-config"), 200);
  EXPECT_TRUE(vmm.WaitForOutput("count " + std::to_string(before + 2) + "\n", 30s));
  std::ifstream log(dir.Path("log"));
  std::stringstream logged;
  logged << log.rdbuf();
  EXPECT_THAT(logged.str(), HasSubstr("microVM started"));
}

TEST(Api, GuestPowerOffEndsTheProcess) {
  TempDir dir;
  HearthApiProcess vmm(dir);
  ASSERT_TRUE(vmm.ready());
  ASSERT_EQ(vmm.Call("PUT", "/boot-source", BootSource(HEARTH_GUEST_HELLO)).status, 204);
  ASSERT_EQ(vmm.Call("PUT", "/actions", R"({"action_type":"InstanceStart"})").status, 204);
  EXPECT_EQ(vmm.Wait(30s), 0) << vmm.Stderr();
  EXPECT_THAT(vmm.Stdout(), HasSubstr("hello from tiny guest"));
  // The socket file goes with the process.
  struct stat st {};
  EXPECT_NE(::stat(vmm.socket().c_str(), &st), 0);
}

TEST(Api, SecondInstanceStartAndPostBootConfigurationRefused) {
  TempDir dir;
  HearthApiProcess vmm(dir);
  ASSERT_TRUE(vmm.ready());
  StartCounter(vmm);
  EXPECT_FAULT(vmm.Call("PUT", "/actions", R"({"action_type":"InstanceStart"})"), "not supported after starting");
  EXPECT_FAULT(vmm.Call("PUT", "/boot-source", BootSource(HEARTH_GUEST_HELLO)), "not supported after starting");
  EXPECT_FAULT(vmm.Call("PUT", "/machine-config", kSmallMachine), "not supported after starting");
  EXPECT_FAULT(vmm.Call("PATCH", "/machine-config", R"({"vcpu_count":2})"), "not supported after starting");
  EXPECT_FAULT(vmm.Call("PUT", "/vsock", R"({"guest_cid":3,"uds_path":"/tmp/v"})"), "not supported after starting");
  EXPECT_FAULT(vmm.Call("PUT", "/logger", R"({"level":"Debug"})"), "not supported after starting");
  EXPECT_FAULT(vmm.Call("PUT", "/snapshot/load", R"({"snapshot_path":"/s","mem_file_path":"/m"})"),
               "not supported after starting");
  EXPECT_FAULT(vmm.Call("PUT", "/snapshot/create", R"({"snapshot_path":"/s","mem_file_path":"/m"})"),
               "must be Paused");
  EXPECT_FAULT(vmm.Call("PATCH", "/drives/nope", R"({"drive_id":"nope","path_on_host":"/etc/hostname"})"),
               "no such drive");
  EXPECT_STATUS(vmm.Call("PUT", "/actions", R"({"action_type":"SendCtrlAltDel"})"), 204);
  long before = LastCount(vmm.Stdout());
  EXPECT_TRUE(vmm.WaitForOutput("count " + std::to_string(before + 2) + "\n", 30s)) << "the guest stopped";
}

TEST(Api, PostBootCallsRefusedBeforeStart) {
  TempDir dir;
  HearthApiProcess vmm(dir);
  ASSERT_TRUE(vmm.ready());
  EXPECT_FAULT(vmm.Call("PATCH", "/vm", R"({"state":"Paused"})"), "not supported before starting");
  EXPECT_FAULT(vmm.Call("PUT", "/actions", R"({"action_type":"SendCtrlAltDel"})"), "not supported before starting");
  EXPECT_FAULT(vmm.Call("PATCH", "/drives/a", R"({"drive_id":"a","path_on_host":"/etc/hostname"})"),
               "not supported before starting");
  EXPECT_FAULT(vmm.Call("PATCH", "/network-interfaces/a", R"({"iface_id":"a"})"), "not supported before starting");
  EXPECT_FAULT(vmm.Call("PUT", "/snapshot/create", R"({"snapshot_path":"/s","mem_file_path":"/m"})"),
               "not supported before starting");
  EXPECT_FAULT(vmm.Call("PUT", "/actions", R"({"action_type":"FlushMetrics"})"), "metrics system is not initialized");
  EXPECT_FAULT(vmm.Call("PUT", "/actions", R"({"action_type":"InstanceStart"})"), "boot-source: missing");
  // A snapshot is loaded only into a process nothing was configured on.
  EXPECT_STATUS(vmm.Call("PUT", "/machine-config", kSmallMachine), 204);
  EXPECT_FAULT(vmm.Call("PUT", "/snapshot/load", R"({"snapshot_path":"/s","mem_file_path":"/m"})"),
               "not allowed after configuring");
}

TEST(Api, PauseStopsTheGuestAndResumeContinuesWhereItStopped) {
  TempDir dir;
  HearthApiProcess vmm(dir);
  ASSERT_TRUE(vmm.ready());
  StartCounter(vmm);
  EXPECT_STATUS(vmm.Call("PATCH", "/vm", R"({"state":"Paused"})"), 204);
  EXPECT_EQ(json::parse(vmm.Call("GET", "/").body)["state"], "Paused");
  const std::string at_pause = vmm.Stdout();
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(vmm.Stdout(), at_pause) << "the guest ran while paused";
  // Pausing twice is harmless, and configuration calls still answer while paused.
  EXPECT_STATUS(vmm.Call("PATCH", "/vm", R"({"state":"Paused"})"), 204);
  EXPECT_STATUS(vmm.Call("GET", "/vm/config"), 200);
  const long paused_at = LastCount(at_pause);
  EXPECT_STATUS(vmm.Call("PATCH", "/vm", R"({"state":"Resumed"})"), 204);
  EXPECT_EQ(json::parse(vmm.Call("GET", "/").body)["state"], "Running");
  ASSERT_TRUE(vmm.WaitForOutput("count " + std::to_string(paused_at + 3) + "\n", 30s)) << vmm.Stdout();
  const std::string out = vmm.Stdout();
  // One boot: the guest went on counting, it did not start again.
  EXPECT_EQ(out.find("counter start"), out.rfind("counter start"));
  for (long n = 0; n <= paused_at + 3; ++n) {
    EXPECT_THAT(out, HasSubstr("count " + std::to_string(n) + "\n")) << "a count went missing";
  }
}

struct BadRequest {
  const char* name;
  const char* method;
  const char* path;
  std::string body;
  const char* fragment;
};

void PrintTo(const BadRequest& b, std::ostream* os) { *os << b.name; }

class ApiBadRequest : public ::testing::TestWithParam<BadRequest> {};

TEST_P(ApiBadRequest, Is400WithFaultMessageAndTheVmmKeepsServing) {
  TempDir dir;
  HearthApiProcess vmm(dir);
  ASSERT_TRUE(vmm.ready());
  const BadRequest& bad = GetParam();
  EXPECT_FAULT(vmm.Call(bad.method, bad.path, bad.body), bad.fragment);
  EXPECT_STATUS(vmm.Call("GET", "/"), 200);
  EXPECT_STATUS(vmm.Call("PUT", "/machine-config", kSmallMachine), 204);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ApiBadRequest,
    ::testing::Values(
        BadRequest{"MalformedJson", "PUT", "/machine-config", R"({"vcpu_count":1,)", "malformed JSON"},
        BadRequest{"NotAnObject", "PUT", "/machine-config", "[]", "must be a JSON object"},
        BadRequest{"WrongType", "PUT", "/machine-config", R"({"vcpu_count":"one","mem_size_mib":1})",
                   "vcpu_count: expected an integer"},
        BadRequest{"UnknownField", "PUT", "/machine-config", R"({"vcpu_count":1,"mem_size_mib":1,"gpu":1})",
                   "unknown field 'gpu'"},
        BadRequest{"MissingField", "PUT", "/boot-source", R"({"boot_args":"x"})", "kernel_image_path: missing"},
        BadRequest{"BodyTooLarge", "PUT", "/logger", std::string(60000, ' '), "larger than the limit of 51200"},
        BadRequest{"UnknownPath", "GET", "/instances", "", "Invalid request method and/or path: GET /instances"},
        BadRequest{"UnknownMethodOnPath", "DELETE", "/machine-config", "", "Invalid request method and/or path"},
        BadRequest{"GetWithBody", "GET", "/", "{}", "GET request cannot have a body"},
        BadRequest{"EmptyPut", "PUT", "/actions", "", "Empty PUT request"},
        BadRequest{"IdMismatch", "PUT", "/drives/root", R"({"drive_id":"other","path_on_host":"/etc/hostname","is_root_device":true})",
                   "does not match"},
        BadRequest{"BadId", "PUT", "/network-interfaces/eth-0", R"({"iface_id":"eth-0","host_dev_name":"tap0"})",
                   "may contain only letters"},
        BadRequest{"MissingKernel", "PUT", "/boot-source", R"({"kernel_image_path":"/no/such/kernel"})",
                   "No such file or directory"},
        BadRequest{"KernelIsADirectory", "PUT", "/boot-source", R"({"kernel_image_path":"/tmp"})", "not a regular file"},
        BadRequest{"MissingDriveFile", "PUT", "/drives/root",
                   R"({"drive_id":"root","path_on_host":"/no/such/disk","is_root_device":true})", "No such file"},
        BadRequest{"SmallCid", "PUT", "/vsock", R"({"guest_cid":1,"uds_path":"/tmp/v.sock"})", "reserved"},
        BadRequest{"TooManyVcpus", "PUT", "/machine-config", R"({"vcpu_count":64,"mem_size_mib":128})", "more than 32"},
        BadRequest{"OddSmtPatch", "PATCH", "/machine-config", R"({"vcpu_count":3,"smt":true})", "must be 1 or even"},
        BadRequest{"ZeroMemory", "PUT", "/machine-config", R"({"vcpu_count":1,"mem_size_mib":0})", "greater than 0"},
        BadRequest{"UnsupportedBalloon", "PUT", "/balloon", R"({"amount_mib":1,"deflate_on_oom":true})",
                   "balloon device is not supported"},
        BadRequest{"BadAction", "PUT", "/actions", R"({"action_type":"Explode"})", "'Explode' is not"}),
    [](const ::testing::TestParamInfo<BadRequest>& p) { return std::string(p.param.name); });

TEST(Api, UnknownHttpMethodAndGarbageAreAnswered) {
  TempDir dir;
  HearthApiProcess vmm(dir);
  ASSERT_TRUE(vmm.ready());
  EXPECT_FAULT(RawHttp(vmm.socket(), "BREW /machine-config HTTP/1.1\r\nHost: x\r\n\r\n"),
               "Invalid request method and/or path");
  HttpResponse garbage = RawHttp(vmm.socket(), std::string("\x01\x02 not http at all\r\n\r\n"), 5s);
  if (garbage.connected) {
    EXPECT_EQ(garbage.status, 400) << garbage.Describe();
  }
  EXPECT_STATUS(vmm.Call("GET", "/"), 200);
}

TEST(Api, DuplicateDriveRulesApply) {
  TempDir dir;
  std::string disk1 = dir.Write("d1.img", std::string(4096, '\0'));
  std::string disk2 = dir.Write("d2.img", std::string(4096, '\0'));
  HearthApiProcess vmm(dir);
  ASSERT_TRUE(vmm.ready());
  EXPECT_STATUS(vmm.Call("PUT", "/drives/root", R"({"drive_id":"root","path_on_host":)" + Quote(disk1) +
                                                    R"(,"is_root_device":true})"),
                204);
  EXPECT_FAULT(vmm.Call("PUT", "/drives/root2", R"({"drive_id":"root2","path_on_host":)" + Quote(disk2) +
                                                    R"(,"is_root_device":true})"),
               "is already the root device");
  // Replacing a drive under the same id is an update.
  EXPECT_STATUS(vmm.Call("PUT", "/drives/root", R"({"drive_id":"root","path_on_host":)" + Quote(disk2) +
                                                    R"(,"is_root_device":true})"),
                204);
  json config = json::parse(vmm.Call("GET", "/vm/config").body);
  ASSERT_EQ(config["drives"].size(), 1u);
  EXPECT_EQ(config["drives"][0]["path_on_host"], disk2);
  EXPECT_STATUS(vmm.Call("PUT", "/network-interfaces/eth0", R"({"iface_id":"eth0","host_dev_name":"tap0"})"), 204);
  EXPECT_FAULT(vmm.Call("PUT", "/network-interfaces/eth1", R"({"iface_id":"eth1","host_dev_name":"tap0"})"),
               "already used by 'eth0'");
}

// A tap device for the duration of a test (tests run as root).
class ScopedTap {
 public:
  ScopedTap() : name_("hapi" + std::to_string(::getpid() % 100000)) {
    ok_ = RunProcess({"ip", "tuntap", "add", "dev", name_, "mode", "tap"}, 10s).ExitedWith(0);
  }
  ~ScopedTap() {
    if (ok_) RunProcess({"ip", "link", "del", name_}, 10s);
  }
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  bool ok_ = false;
};

TEST(Api, PatchDrivesAndInterfacesAfterStart) {
  TempDir dir;
  std::string disk1 = dir.Write("d1.img", std::string(4096, 'a'));
  std::string disk2 = dir.Write("d2.img", std::string(8192, 'b'));
  ScopedTap tap;
  ASSERT_TRUE(tap.ok()) << "cannot create a tap device (root needed)";
  HearthApiProcess vmm(dir);
  ASSERT_TRUE(vmm.ready());
  EXPECT_STATUS(vmm.Call("PUT", "/drives/data", R"({"drive_id":"data","path_on_host":)" + Quote(disk1) +
                                                    R"(,"is_root_device":false})"),
                204);
  EXPECT_STATUS(vmm.Call("PUT", "/network-interfaces/eth0",
                         R"({"iface_id":"eth0","host_dev_name":)" + Quote(tap.name()) +
                             R"(,"tx_rate_limiter":{"bandwidth":{"size":1000000,"refill_time":100}}})"),
                204);
  const std::string metrics = dir.Path("metrics.json");
  EXPECT_STATUS(vmm.Call("PUT", "/metrics", R"({"metrics_path":)" + Quote(metrics) + "}"), 204);
  StartCounter(vmm);
  // Swap the backing file, then limit the drive.
  EXPECT_STATUS(vmm.Call("PATCH", "/drives/data", R"({"drive_id":"data","path_on_host":)" + Quote(disk2) + "}"), 204);
  EXPECT_STATUS(vmm.Call("PATCH", "/drives/data",
                         R"({"drive_id":"data","rate_limiter":{"ops":{"size":100,"refill_time":1000}}})"),
                204);
  EXPECT_FAULT(vmm.Call("PATCH", "/drives/data", R"({"drive_id":"data","path_on_host":"/no/such/file"})"),
               "No such file");
  EXPECT_FAULT(vmm.Call("PATCH", "/drives/other", R"({"drive_id":"other","path_on_host":)" + Quote(disk2) + "}"),
               "no such drive");
  EXPECT_STATUS(vmm.Call("PATCH", "/network-interfaces/eth0",
                         R"({"iface_id":"eth0","rx_rate_limiter":{"ops":{"size":10,"refill_time":10}}})"),
                204);
  EXPECT_FAULT(vmm.Call("PATCH", "/network-interfaces/eth9", R"({"iface_id":"eth9"})"), "no such interface");
  json config = json::parse(vmm.Call("GET", "/vm/config").body);
  EXPECT_EQ(config["drives"][0]["path_on_host"], disk2);
  EXPECT_EQ(config["drives"][0]["rate_limiter"]["ops"]["size"], 100);
  EXPECT_EQ(config["network-interfaces"][0]["rx_rate_limiter"]["ops"]["size"], 10);
  // The TX limit given at PUT stays.
  EXPECT_EQ(config["network-interfaces"][0]["tx_rate_limiter"]["bandwidth"]["size"], 1000000);
  EXPECT_STATUS(vmm.Call("PUT", "/actions", R"({"action_type":"FlushMetrics"})"), 204);
  std::ifstream in(metrics);
  std::string line;
  std::getline(in, line);
  json m = json::parse(line);
  EXPECT_TRUE(m["block"]["data"].contains("rate_limiter_throttled_events")) << m.dump();
  EXPECT_TRUE(m["net"]["eth0"].contains("tx_rate_limiter_throttled_events")) << m.dump();
  long before = LastCount(vmm.Stdout());
  EXPECT_TRUE(vmm.WaitForOutput("count " + std::to_string(before + 2) + "\n", 30s)) << "the guest stopped";
}

TEST(Api, StalledClientDoesNotBlockOthersForLong) {
  TempDir dir;
  HearthApiProcess vmm(dir);
  ASSERT_TRUE(vmm.ready());
  // Half a request, then silence.
  int stalled = ConnectUnix(vmm.socket());
  ASSERT_GE(stalled, 0);
  const char half[] = "PUT /machine-config HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"vcpu";
  ASSERT_GT(::send(stalled, half, sizeof(half) - 1, MSG_NOSIGNAL), 0);
  const auto t0 = std::chrono::steady_clock::now();
  HttpResponse r = Http(vmm.socket(), "GET", "/", "", 10s);
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_STATUS(r, 200);
  EXPECT_LT(waited, 5s) << "a stalled client held the API for too long";
  ::close(stalled);
  // An idle connection that never sends anything is dropped too.
  int idle = ConnectUnix(vmm.socket());
  EXPECT_STATUS(Http(vmm.socket(), "GET", "/version", "", 10s), 200);
  ::close(idle);
}

TEST(Api, ClientsThatDisconnectMidResponseAreHarmless) {
  TempDir dir;
  HearthApiProcess vmm(dir);
  ASSERT_TRUE(vmm.ready());
  for (int i = 0; i < 50; ++i) {
    int fd = ConnectUnix(vmm.socket());
    ASSERT_GE(fd, 0);
    const char req[] = "GET /vm/config HTTP/1.1\r\nHost: x\r\n\r\n";
    (void)::send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL);
    // Reset the connection instead of reading the answer.
    struct linger l {1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    ::close(fd);
  }
  EXPECT_STATUS(vmm.Call("GET", "/"), 200);
  EXPECT_TRUE(vmm.Running());
}

TEST(Api, AThousandRequestsInARow) {
  TempDir dir;
  HearthApiProcess vmm(dir);
  ASSERT_TRUE(vmm.ready());
  int ok = 0;
  for (int i = 0; i < 1000; ++i) {
    HttpResponse r = i % 2 ? vmm.Call("GET", "/") : vmm.Call("PUT", "/machine-config", kSmallMachine);
    if (r.status == (i % 2 ? 200 : 204)) ++ok;
  }
  EXPECT_EQ(ok, 1000);
  EXPECT_TRUE(vmm.Running());
}

TEST(Api, StaleSocketIsReplacedLiveOneRefused) {
  TempDir dir;
  const std::string path = dir.Path("api.sock");
  {
    // A socket file whose listener is gone.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);
  }
  HearthApiProcess first(dir);
  ASSERT_TRUE(first.ready()) << first.Stderr();
  EXPECT_STATUS(first.Call("GET", "/"), 200);
  HearthApiProcess second(dir);
  auto code = second.Wait(10s);
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
  EXPECT_THAT(second.Stderr(), HasSubstr("another process is serving on it"));
  EXPECT_STATUS(first.Call("GET", "/"), 200);
  // Not a socket at all: refused, and the file is left alone.
  dir.Write("plain", "data");
  HearthApiProcess third(dir, {}, "plain");
  EXPECT_NE(third.Wait(10s).value_or(0), 0);
  EXPECT_THAT(third.Stderr(), HasSubstr("not a socket"));
}

TEST(Api, ConfigFileWithApiBootsAndKeepsServing) {
  TempDir dir;
  std::string config = dir.Write("vm.json", R"({"boot-source":)" + BootSource(HEARTH_GUEST_COUNTER) +
                                                R"(,"machine-config":)" + kSmallMachine + "}");
  HearthApiProcess vmm(dir, {"--config-file", config, "--id", "vm_7"});
  ASSERT_TRUE(vmm.ready());
  ASSERT_TRUE(vmm.WaitForOutput("count 2\n", 30s)) << vmm.Stderr();
  json info = json::parse(vmm.Call("GET", "/").body);
  EXPECT_EQ(info["state"], "Running");
  EXPECT_EQ(info["id"], "vm_7");
  json config_back = json::parse(vmm.Call("GET", "/vm/config").body);
  EXPECT_EQ(config_back["machine-config"]["mem_size_mib"], 32);
  EXPECT_EQ(config_back["boot-source"]["kernel_image_path"], HEARTH_GUEST_COUNTER);
}

TEST(Api, MetricsFlushOnRequestWithCounters) {
  TempDir dir;
  HearthApiProcess vmm(dir);
  ASSERT_TRUE(vmm.ready());
  const std::string metrics = dir.Path("metrics.json");
  EXPECT_STATUS(vmm.Call("PUT", "/metrics", R"({"metrics_path":)" + Quote(metrics) + "}"), 204);
  EXPECT_FAULT(vmm.Call("PUT", "/metrics", R"({"metrics_path":)" + Quote(metrics) + "}"), "Reinitialization");
  StartCounter(vmm);
  EXPECT_STATUS(vmm.Call("PUT", "/actions", R"({"action_type":"FlushMetrics"})"), 204);
  EXPECT_STATUS(vmm.Call("PUT", "/actions", R"({"action_type":"FlushMetrics"})"), 204);
  std::ifstream in(metrics);
  std::string line;
  std::vector<json> flushes;
  while (std::getline(in, line)) flushes.push_back(json::parse(line));
  ASSERT_EQ(flushes.size(), 2u);
  const json& m = flushes.back();
  EXPECT_EQ(m["state"], "Running");
  EXPECT_GE(m["api_server"]["put_boot_source"]["count"].get<int>(), 1);
  EXPECT_GE(m["api_server"]["put_metrics"]["faults"].get<int>(), 1);
  EXPECT_GT(m["vcpu_exits"]["io"].get<uint64_t>(), 10u) << "the counter guest writes the UART";
  EXPECT_TRUE(m["boot"].contains("boot_signal_since_instance_start_us")) << m.dump();
  EXPECT_GE(m["utc_timestamp_ms"].get<int64_t>(), flushes.front()["utc_timestamp_ms"].get<int64_t>());
}

TEST(Api, MetricsIntoAFifoWithoutAReaderNeverBlocks) {
  TempDir dir;
  const std::string fifo = dir.Path("metrics.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  HearthApiProcess vmm(dir, {"--metrics-path", fifo});
  ASSERT_TRUE(vmm.ready()) << vmm.Stderr();
  for (int i = 0; i < 5; ++i) EXPECT_STATUS(vmm.Call("PUT", "/actions", R"({"action_type":"FlushMetrics"})"), 204);
  EXPECT_STATUS(vmm.Call("GET", "/"), 200);
}

TEST(Api, LoggerShowsOriginWhenAsked) {
  TempDir dir;
  HearthApiProcess vmm(dir);
  ASSERT_TRUE(vmm.ready());
  const std::string log = dir.Path("vmm.log");
  EXPECT_STATUS(vmm.Call("PUT", "/logger", R"({"log_path":)" + Quote(log) +
                                                R"(,"level":"Info","show_level":true,"show_log_origin":true})"),
                204);
  StartCounter(vmm);
  std::ifstream in(log);
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_THAT(s.str(), HasSubstr(":INFO:vmm/vmm_controller.cc:"));
}

TEST(Api, SignalBeforeStartEndsTheProcessCleanly) {
  TempDir dir;
  HearthApiProcess vmm(dir);
  ASSERT_TRUE(vmm.ready());
  ::kill(vmm.pid(), SIGTERM);
  EXPECT_EQ(vmm.Wait(10s), 128 + SIGTERM);
  struct stat st {};
  EXPECT_NE(::stat(vmm.socket().c_str(), &st), 0) << "the socket file was left behind";
}

}  // namespace
}  // namespace hearth::testing
