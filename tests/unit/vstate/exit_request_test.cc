#include "vstate/exit_request.h"

#include <poll.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

namespace hearth {
namespace {

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

TEST(ExitRequest, StartsUnrequested) {
  auto req = ExitRequest::Create();
  ASSERT_OK(req);
  EXPECT_FALSE((*req)->requested());
  EXPECT_FALSE(Readable((*req)->fd()));
}

TEST(ExitRequest, FirstRequestWins) {
  auto req = ExitRequest::Create();
  ASSERT_OK(req);
  ExitRequest& r = **req;
  r.Request(ExitKind::kPowerOff, "guest powered off");
  r.Request(ExitKind::kTripleFault, "vCPU 1: triple fault");
  EXPECT_TRUE(r.requested());
  EXPECT_EQ(r.kind(), ExitKind::kPowerOff);
  EXPECT_EQ(r.message(), "guest powered off");
  EXPECT_TRUE(Readable(r.fd()));
}

TEST(ExitRequest, FirstOfManyThreadsWins) {
  auto req = ExitRequest::Create();
  ASSERT_OK(req);
  std::shared_ptr<ExitRequest> r = *req;
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([r, i] { r->Request(ExitKind::kSignal, "thread " + std::to_string(i)); });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(r->requested());
  EXPECT_EQ(r->kind(), ExitKind::kSignal);
  EXPECT_EQ(r->message().rfind("thread ", 0), 0u);
  // Signalled exactly once.
  uint64_t count = 0;
  ASSERT_EQ(::read(r->fd(), &count, sizeof(count)), static_cast<ssize_t>(sizeof(count)));
  EXPECT_EQ(count, 1u);
}

TEST(ExitRequest, KindNames) {
  EXPECT_STREQ(ExitKindName(ExitKind::kPowerOff), "power-off");
  EXPECT_STREQ(ExitKindName(ExitKind::kReset), "reset");
  EXPECT_STREQ(ExitKindName(ExitKind::kTripleFault), "triple-fault");
  EXPECT_STREQ(ExitKindName(ExitKind::kGuestPanic), "guest-panic");
  EXPECT_STREQ(ExitKindName(ExitKind::kEmulationFailure), "emulation-failure");
  EXPECT_STREQ(ExitKindName(ExitKind::kVmmError), "vmm-error");
  EXPECT_STREQ(ExitKindName(ExitKind::kSignal), "signal");
}

}  // namespace
}  // namespace hearth
