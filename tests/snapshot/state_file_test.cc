#include "snapshot/state_file.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "base/atomic_file.h"
#include "snapshot/crc64.h"
#include "test_util.h"

namespace hearth {
namespace {

using unit::TempDir;

std::vector<uint8_t> Payload(size_t n) {
  std::vector<uint8_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(i * 7 + 3);
  return p;
}

TEST(Crc64, MatchesXzCheckValue) {
  const char* check = "123456789";
  EXPECT_EQ(Crc64(std::span(reinterpret_cast<const uint8_t*>(check), 9)), 0x995dc9bbdf1939faull);
  // Incremental equals one-shot.
  auto p = Payload(1000);
  uint64_t part = Crc64(std::span(p.data(), 400));
  EXPECT_EQ(Crc64(std::span(p.data() + 400, 600), part), Crc64(p));
}

TEST(StateFile, RoundTrip) {
  TempDir dir;
  auto payload = Payload(5000);
  ASSERT_OK(WriteStateFile(dir.File("s"), payload));
  auto read = ReadStateFile(dir.File("s"));
  ASSERT_OK(read);
  EXPECT_EQ(*read, payload);
  // Nothing but the final file is left in the directory.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

TEST(StateFile, RefusesWrongMagic) {
  auto file = EncodeStateFile(Payload(10));
  file[0] = 'X';
  EXPECT_ERROR_CONTAINS(DecodeStateFile(file, "f"), "f: not a Hearth snapshot state file (wrong magic)");
}

TEST(StateFile, RefusesOtherVersion) {
  auto file = EncodeStateFile(Payload(10));
  uint32_t v = kSnapshotFormatVersion + 1;
  std::memcpy(file.data() + 8, &v, 4);
  EXPECT_ERROR_CONTAINS(DecodeStateFile(file, "f"), "snapshot format version 4, this Hearth reads only version 3");
}

TEST(StateFile, RefusesBadChecksum) {
  auto file = EncodeStateFile(Payload(100));
  file[kSnapshotHeaderSize + 50] ^= 0x01;
  EXPECT_ERROR_CONTAINS(DecodeStateFile(file, "f"), "checksum mismatch");
  auto file2 = EncodeStateFile(Payload(100));
  file2.back() ^= 0x80;  // The stored CRC itself.
  EXPECT_ERROR_CONTAINS(DecodeStateFile(file2, "f"), "checksum mismatch");
}

TEST(StateFile, RefusesEveryTruncation) {
  auto file = EncodeStateFile(Payload(64));
  for (size_t n = 0; n < file.size(); ++n) {
    auto r = DecodeStateFile(std::span(file.data(), n), "f");
    EXPECT_FALSE(r.ok()) << "accepted a file truncated to " << n << " bytes";
  }
  auto r = DecodeStateFile(std::span(file.data(), file.size() - 3), "f");
  EXPECT_ERROR_CONTAINS(r, "truncated");
}

TEST(StateFile, RefusesTrailingBytes) {
  auto file = EncodeStateFile(Payload(64));
  file.push_back(0);
  EXPECT_ERROR_CONTAINS(DecodeStateFile(file, "f"), "unexpected bytes after the checksum");
}

TEST(StateFile, RefusesHugeLength) {
  auto file = EncodeStateFile(Payload(8));
  uint64_t len = ~0ull;
  std::memcpy(file.data() + 16, &len, 8);
  EXPECT_ERROR_CONTAINS(DecodeStateFile(file, "f"), "truncated");
}

TEST(StateFile, MissingDirectoryIsReported) {
  TempDir dir;
  auto s = WriteStateFile(dir.File("no/such/dir/state"), Payload(4));
  EXPECT_ERROR_CONTAINS(s, "no/such/dir is not usable: No such file or directory");
}

TEST(StateFile, MissingFileIsReported) {
  TempDir dir;
  EXPECT_ERROR_CONTAINS(ReadStateFile(dir.File("absent")), "absent");
}

TEST(AtomicFile, DroppedWithoutCommitLeavesNothing) {
  TempDir dir;
  {
    auto f = AtomicFile::Create(dir.File("x"));
    ASSERT_OK(f);
    ASSERT_OK(f->Write("abc", 3));
  }
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 0);
}

TEST(AtomicFile, KeepsOldFileUntilCommit) {
  TempDir dir;
  std::string path = dir.WriteText("x", "old");
  auto f = AtomicFile::Create(path);
  ASSERT_OK(f);
  ASSERT_OK(f->Write("new!", 4));
  EXPECT_EQ(std::filesystem::file_size(path), 3u);
  ASSERT_OK(f->Commit());
  EXPECT_EQ(std::filesystem::file_size(path), 4u);
}

// A full disk while writing: the error names ENOSPC and no file is left under the final name.
// Runs in a child with its own mount namespace and a 64 KiB tmpfs (needs root).
TEST(StateFile, FullDiskLeavesNoFile) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs";
  TempDir dir;
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(pipefd[0]);
    auto report = [&](const std::string& s) {
      (void)!write(pipefd[1], s.data(), s.size());
      _exit(0);
    };
    if (unshare(CLONE_NEWNS) != 0) report("unshare failed");
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) report("make-private failed");
    if (mount("tmpfs", dir.path().c_str(), "tmpfs", 0, "size=64k") != 0) report("mount failed");
    auto s = WriteStateFile(dir.File("state"), Payload(1 << 20));
    std::string msg = s.ok() ? "ok" : s.error().message();
    bool exists = std::filesystem::exists(dir.File("state"));
    size_t entries = std::distance(std::filesystem::directory_iterator(dir.path()), {});
    report(msg + "|exists=" + std::to_string(exists) + "|entries=" + std::to_string(entries));
  }
  close(pipefd[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_NE(out.find("No space left on device"), std::string::npos) << out;
  EXPECT_NE(out.find("|exists=0|entries=0"), std::string::npos) << out;
}

}  // namespace
}  // namespace hearth
