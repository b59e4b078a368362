#include "base/event_loop.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/epoll.h>

#include <vector>

#include "base/fd.h"
#include "test_util.h"

namespace hearth {
namespace {

TEST(EventLoop, DispatchesReadyFdOnly) {
  auto loop = EventLoop::Create();
  ASSERT_OK(loop);
  auto a = EventFd::Create();
  auto b = EventFd::Create();
  ASSERT_OK(a);
  ASSERT_OK(b);
  int a_calls = 0, b_calls = 0;
  uint32_t a_events = 0;
  ASSERT_OK(loop->Add(a->get(), EPOLLIN, [&](uint32_t ev) {
    ++a_calls;
    a_events = ev;
    (void)a->Consume();
  }));
  ASSERT_OK(loop->Add(b->get(), EPOLLIN, [&](uint32_t) { ++b_calls; }));
  EXPECT_TRUE(loop->Watching(a->get()));

  ASSERT_OK(a->Signal());
  ASSERT_OK(loop->RunOnce(1000));
  EXPECT_EQ(a_calls, 1);
  EXPECT_EQ(b_calls, 0);
  EXPECT_NE(a_events & EPOLLIN, 0u);

  // Nothing ready: a zero timeout returns without dispatching.
  ASSERT_OK(loop->RunOnce(0));
  EXPECT_EQ(a_calls, 1);
  EXPECT_EQ(b_calls, 0);
}

TEST(EventLoop, RemoveStopsDispatch) {
  auto loop = EventLoop::Create();
  ASSERT_OK(loop);
  auto a = EventFd::Create();
  ASSERT_OK(a);
  int calls = 0;
  ASSERT_OK(loop->Add(a->get(), EPOLLIN, [&](uint32_t) { ++calls; }));
  ASSERT_OK(loop->Remove(a->get()));
  EXPECT_FALSE(loop->Watching(a->get()));
  ASSERT_OK(a->Signal());
  ASSERT_OK(loop->RunOnce(0));
  EXPECT_EQ(calls, 0);
  EXPECT_OK(loop->Remove(a->get()));  // Removing twice is harmless.
}

TEST(EventLoop, HandlerCanRemoveItself) {
  auto loop = EventLoop::Create();
  ASSERT_OK(loop);
  auto a = EventFd::Create();
  ASSERT_OK(a);
  int calls = 0;
  int captured = 12345;  // The handler's captures must survive its own removal.
  ASSERT_OK(loop->Add(a->get(), EPOLLIN, [&, captured](uint32_t) {
    ++calls;
    EXPECT_OK(loop->Remove(a->get()));
    EXPECT_EQ(captured, 12345);
  }));
  ASSERT_OK(a->Signal());
  ASSERT_OK(loop->RunOnce(1000));
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(loop->Watching(a->get()));
  // Still readable (never consumed), but no longer watched.
  ASSERT_OK(loop->RunOnce(0));
  EXPECT_EQ(calls, 1);
}

TEST(EventLoop, HandlerRemovingAnotherReadyFdSkipsIt) {
  auto loop = EventLoop::Create();
  ASSERT_OK(loop);
  auto a = EventFd::Create();
  auto b = EventFd::Create();
  ASSERT_OK(a);
  ASSERT_OK(b);
  int a_calls = 0, b_calls = 0;
  // Whichever runs first removes the other; exactly one handler runs.
  ASSERT_OK(loop->Add(a->get(), EPOLLIN, [&](uint32_t) {
    ++a_calls;
    EXPECT_OK(loop->Remove(b->get()));
  }));
  ASSERT_OK(loop->Add(b->get(), EPOLLIN, [&](uint32_t) {
    ++b_calls;
    EXPECT_OK(loop->Remove(a->get()));
  }));
  ASSERT_OK(a->Signal());
  ASSERT_OK(b->Signal());
  ASSERT_OK(loop->RunOnce(1000));
  EXPECT_EQ(a_calls + b_calls, 1);
}

TEST(EventLoop, AddReplacesHandler) {
  auto loop = EventLoop::Create();
  ASSERT_OK(loop);
  auto a = EventFd::Create();
  ASSERT_OK(a);
  int first = 0, second = 0;
  ASSERT_OK(loop->Add(a->get(), EPOLLIN, [&](uint32_t) { ++first; }));
  ASSERT_OK(loop->Add(a->get(), EPOLLIN, [&](uint32_t) {
    ++second;
    (void)a->Consume();
  }));
  ASSERT_OK(a->Signal());
  ASSERT_OK(loop->RunOnce(1000));
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, 1);
}

TEST(EventLoop, AddInvalidFdNamesEpollCtl) {
  auto loop = EventLoop::Create();
  ASSERT_OK(loop);
  EXPECT_ERROR_CONTAINS(loop->Add(-1, EPOLLIN, [](uint32_t) {}), "epoll_ctl add fd -1");
  EXPECT_FALSE(loop->Watching(-1));
}

TEST(EventLoop, RunReturnsAfterStop) {
  auto loop = EventLoop::Create();
  ASSERT_OK(loop);
  auto a = EventFd::Create();
  ASSERT_OK(a);
  int calls = 0;
  ASSERT_OK(loop->Add(a->get(), EPOLLIN, [&](uint32_t) {
    ++calls;
    (void)a->Consume();
    loop->Stop();
  }));
  ASSERT_OK(a->Signal());
  ASSERT_OK(loop->Run());
  EXPECT_TRUE(loop->stopped());
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace hearth
