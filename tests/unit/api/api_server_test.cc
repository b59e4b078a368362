// The API thread and the VMM thread, without a VM: ApiServer on a real UNIX socket hands each
// request through the ActionChannel to a "VMM thread" that runs an EventLoop, as main.cc wires
// them. These are the tests the ThreadSanitizer build runs for the API <-> VMM hand-over.
#include "api/api_server.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/action_channel.h"
#include "api/api_metrics.h"
#include "base/event_loop.h"
#include "base/fd.h"
#include "tests/support/api_client.h"
#include "tests/support/temp_dir.h"

namespace hearth {
namespace {

using testing::Http;
using testing::TempDir;

// The VMM side: an event loop on its own thread that serves the channel with `handler` until
// stopped. Close() on the channel happens on this thread too, as in the VMM.
class VmmThread {
 public:
  VmmThread(ActionChannel& channel, ActionChannel::Handler handler) : channel_(channel) {
    auto loop = EventLoop::Create();
    auto stop = EventFd::Create();
    EXPECT_TRUE(loop.ok() && stop.ok());
    loop_.emplace(std::move(loop).value());
    stop_.emplace(std::move(stop).value());
    EXPECT_TRUE(loop_->Add(channel_.fd(), EPOLLIN, [this, handler](uint32_t) {
                       channel_.Serve([&](const ApiAction& a) {
                         served_on_ = std::this_thread::get_id();
                         return handler(a);
                       });
                     }).ok());
    EXPECT_TRUE(loop_->Add(stop_->get(), EPOLLIN, [this](uint32_t) {
                       std::lock_guard lock(mu_);
                       channel_.Close(close_reason_);
                       loop_->Stop();
                     }).ok());
    thread_ = std::thread([this] { EXPECT_TRUE(loop_->Run().ok()); });
  }
  ~VmmThread() { Stop("the VMM stopped"); }

  // Closes the channel with `reason` on the VMM thread and ends the thread.
  void Stop(std::string reason) {
    if (!thread_.joinable()) return;
    {
      // The eventfd wakes the loop but is no synchronisation of its own: the lock hands over.
      std::lock_guard lock(mu_);
      close_reason_ = std::move(reason);
    }
    EXPECT_TRUE(stop_->Signal().ok());
    thread_.join();
  }
  std::thread::id id() const { return thread_.get_id(); }
  // Valid after Stop().
  std::thread::id served_on() const { return served_on_; }

 private:
  ActionChannel& channel_;
  std::optional<EventLoop> loop_;
  std::optional<EventFd> stop_;
  std::mutex mu_;
  std::string close_reason_;  // Guarded by mu_.
  std::thread::id served_on_;
  std::thread thread_;
};

struct Api {
  TempDir dir;
  std::string socket = dir.Path("api.sock");
  std::unique_ptr<ActionChannel> channel = ActionChannel::Create().value();
  ApiMetrics metrics;
  std::unique_ptr<ApiServer> server;

  Api() {
    auto created = ApiServer::Create({socket, channel.get(), &metrics, {}});
    EXPECT_TRUE(created.ok()) << created.error().message();
    if (created.ok()) server = std::move(created).value();
  }
};

ApiResponse Version(const ApiAction& action) {
  if (std::holds_alternative<GetVersion>(action)) return ApiResponse::Json(R"({"firecracker_version":"1.0.0"})");
  return ApiResponse::NoContent();
}

TEST(ApiServer, RequestsAreAnsweredByTheVmmThread) {
  Api api;
  ASSERT_NE(api.server, nullptr);
  std::thread::id vmm_id;
  {
    VmmThread vmm(*api.channel, Version);
    vmm_id = vmm.id();
    api.server->Start();
    auto r = Http(api.socket, "GET", "/version");
    EXPECT_EQ(r.status, 200) << r.Describe();
    EXPECT_EQ(r.body, R"({"firecracker_version":"1.0.0"})");
    r = Http(api.socket, "PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 128})");
    EXPECT_EQ(r.status, 204) << r.Describe();
    // A body the parser refuses never reaches the VMM thread.
    r = Http(api.socket, "PUT", "/machine-config", "{");
    EXPECT_EQ(r.status, 400) << r.Describe();
    vmm.Stop("done");
    EXPECT_EQ(vmm.served_on(), vmm_id);
  }
  api.server->Stop();
  auto stats = api.metrics.Snapshot();
  EXPECT_EQ(stats["get_version"].count, 1u);
  EXPECT_EQ(stats["put_machine_config"].count, 1u);
  EXPECT_EQ(stats["invalid_request"].faults, 1u);
}

TEST(ApiServer, ClientsOnManyThreadsAreServedInTurn) {
  Api api;
  ASSERT_NE(api.server, nullptr);
  std::atomic<int> served{0};
  VmmThread vmm(*api.channel, [&](const ApiAction& a) {
    ++served;
    return Version(a);
  });
  api.server->Start();
  constexpr int kClients = 4, kRequests = 20;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      for (int i = 0; i < kRequests; ++i) {
        if (Http(api.socket, "GET", "/version").status == 200) ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kClients * kRequests);
  EXPECT_EQ(served.load(), kClients * kRequests);
  api.server->Stop();
  EXPECT_EQ(api.metrics.Snapshot()["get_version"].count, uint64_t{kClients * kRequests});
}

// A request waiting for the VMM thread when the VMM stops gets the reason, and so does every
// later one: the API thread never hangs on a VMM that is gone.
TEST(ApiServer, ACallWaitingWhenTheVmmStopsGetsTheReason) {
  Api api;
  ASSERT_NE(api.server, nullptr);
  api.server->Start();
  testing::HttpResponse waiting;
  std::thread client([&] { waiting = Http(api.socket, "GET", "/version"); });
  // The channel's eventfd turns readable once the API thread has queued the action.
  pollfd p{api.channel->fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);
  // This thread stands in for the VMM thread: it stops without serving.
  api.channel->Close("the microVM is shutting down");
  client.join();
  EXPECT_EQ(waiting.status, 400) << waiting.Describe();
  EXPECT_NE(waiting.body.find("the microVM is shutting down"), std::string::npos) << waiting.body;
  auto later = Http(api.socket, "GET", "/version");
  EXPECT_EQ(later.status, 400) << later.Describe();
  EXPECT_NE(later.body.find("the microVM is shutting down"), std::string::npos) << later.body;
}

TEST(ApiServer, StopEndsAnIdleConnectionAndRemovesTheSocket) {
  Api api;
  ASSERT_NE(api.server, nullptr);
  VmmThread vmm(*api.channel, Version);
  api.server->Start();
  Fd idle(testing::ConnectUnix(api.socket));
  ASSERT_TRUE(idle.valid());
  auto start = std::chrono::steady_clock::now();
  api.server->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  struct stat st {};
  EXPECT_NE(::lstat(api.socket.c_str(), &st), 0);
}

// Stop() right after Start() races the API thread getting to listen: it must neither hang nor
// leave the thread running.
TEST(ApiServer, StopRightAfterStart) {
  for (int i = 0; i < 20; ++i) {
    Api api;
    ASSERT_NE(api.server, nullptr);
    api.server->Start();
    api.server->Stop();
  }
}

}  // namespace
}  // namespace hearth
