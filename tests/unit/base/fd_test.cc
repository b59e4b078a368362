#include "base/fd.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "test_util.h"

namespace hearth {
namespace {

using ::testing::HasSubstr;

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

int OpenDevNull() {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  return fd;
}

TEST(Fd, ClosesOnDestruction) {
  int raw = OpenDevNull();
  {
    Fd fd(raw);
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(fd.get(), raw);
    EXPECT_TRUE(IsOpen(raw));
  }
  EXPECT_FALSE(IsOpen(raw));
  EXPECT_EQ(errno, EBADF);
}

TEST(Fd, DefaultIsInvalid) {
  Fd fd;
  EXPECT_FALSE(fd.valid());
  EXPECT_EQ(fd.get(), -1);
}

TEST(Fd, MoveConstructTransfersOwnership) {
  int raw = OpenDevNull();
  Fd a(raw);
  Fd b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): the moved-from state is defined.
  EXPECT_EQ(b.get(), raw);
  EXPECT_TRUE(IsOpen(raw));
}

TEST(Fd, MoveAssignClosesPreviousFd) {
  int first = OpenDevNull();
  int second = OpenDevNull();
  Fd a(first);
  Fd b(second);
  a = std::move(b);
  EXPECT_FALSE(IsOpen(first));
  EXPECT_TRUE(IsOpen(second));
  EXPECT_EQ(a.get(), second);
  EXPECT_FALSE(b.valid());  // NOLINT(bugprone-use-after-move)
}

TEST(Fd, SelfMoveAssignKeepsFd) {
  int raw = OpenDevNull();
  Fd a(raw);
  Fd& alias = a;
  a = std::move(alias);
  EXPECT_EQ(a.get(), raw);
  EXPECT_TRUE(IsOpen(raw));
}

TEST(Fd, ReleaseGivesUpOwnership) {
  int raw = OpenDevNull();
  {
    Fd fd(raw);
    EXPECT_EQ(fd.Release(), raw);
    EXPECT_FALSE(fd.valid());
  }
  EXPECT_TRUE(IsOpen(raw));
  ::close(raw);
}

TEST(Fd, ResetCloses) {
  int raw = OpenDevNull();
  Fd fd(raw);
  fd.Reset();
  EXPECT_FALSE(fd.valid());
  EXPECT_FALSE(IsOpen(raw));
}

TEST(Fd, OpenSetsCloexec) {
  auto fd = Fd::Open("/dev/null", O_RDONLY);
  ASSERT_OK(fd);
  int flags = ::fcntl(fd->get(), F_GETFD);
  EXPECT_NE(flags & FD_CLOEXEC, 0);
}

TEST(Fd, OpenErrorNamesPath) {
  auto fd = Fd::Open("/nonexistent/hearth/file", O_RDONLY);
  EXPECT_ERROR_CONTAINS(fd, "open /nonexistent/hearth/file: No such file or directory");
}

TEST(PreadExact, ReadsAtOffsetAndRejectsShortFile) {
  unit::TempDir dir;
  std::string path = dir.WriteText("f", "0123456789");
  auto fd = Fd::Open(path, O_RDONLY);
  ASSERT_OK(fd);
  char buf[4] = {};
  ASSERT_OK(PreadExact(fd->get(), buf, 4, 3, "test file"));
  EXPECT_EQ(std::string(buf, 4), "3456");
  EXPECT_ERROR_CONTAINS(PreadExact(fd->get(), buf, 4, 8, "test file"),
                        "read test file: file is truncated");
}

TEST(RegularFileSize, SizeOfFileAndDirectoryRefused) {
  unit::TempDir dir;
  std::string path = dir.WriteText("f", "abcde");
  auto fd = Fd::Open(path, O_RDONLY);
  ASSERT_OK(fd);
  auto size = RegularFileSize(fd->get(), path);
  ASSERT_OK(size);
  EXPECT_EQ(*size, 5u);

  auto dfd = Fd::Open(dir.path(), O_RDONLY);
  ASSERT_OK(dfd);
  EXPECT_ERROR_CONTAINS(RegularFileSize(dfd->get(), dir.path()),
                        dir.path() + ": not a regular file");
}

TEST(WriteAll, WritesEveryByte) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  Fd r(fds[0]), w(fds[1]);
  std::string msg = "hello, hearth";
  ASSERT_OK(WriteAll(w.get(), msg.data(), msg.size(), "pipe"));
  std::string got(msg.size(), '\0');
  ASSERT_EQ(::read(r.get(), got.data(), got.size()), static_cast<ssize_t>(msg.size()));
  EXPECT_EQ(got, msg);
}

TEST(WriteAll, ErrorNamesWhat) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  Fd r(fds[0]), w(fds[1]);
  char c = 'x';
  // Writing to the read end fails with EBADF.
  EXPECT_ERROR_CONTAINS(WriteAll(r.get(), &c, 1, "the pipe"), "write the pipe: Bad file descriptor");
}

TEST(EventFd, SignalThenConsumeReturnsSum) {
  auto ev = EventFd::Create();
  ASSERT_OK(ev);
  auto none = ev->Consume();
  ASSERT_OK(none);
  EXPECT_EQ(*none, 0u);  // Non-blocking: nothing signalled yet.

  ASSERT_OK(ev->Signal());
  ASSERT_OK(ev->Signal(4));
  auto got = ev->Consume();
  ASSERT_OK(got);
  EXPECT_EQ(*got, 5u);

  auto again = ev->Consume();
  ASSERT_OK(again);
  EXPECT_EQ(*again, 0u);  // Consume resets the counter.
}

TEST(EventFd, IsCloexecAndNonblocking) {
  auto ev = EventFd::Create();
  ASSERT_OK(ev);
  EXPECT_NE(::fcntl(ev->get(), F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_NE(::fcntl(ev->get(), F_GETFL) & O_NONBLOCK, 0);
}

TEST(EventFd, SaturatedCounterStillOk) {
  auto ev = EventFd::Create();
  ASSERT_OK(ev);
  ASSERT_OK(ev->Signal(0xfffffffffffffffeull));  // The maximum value the counter holds.
  EXPECT_OK(ev->Signal(1));                        // Would overflow: EAGAIN, reported as ok.
  auto got = ev->Consume();
  ASSERT_OK(got);
  EXPECT_EQ(*got, 0xfffffffffffffffeull);
}

}  // namespace
}  // namespace hearth
