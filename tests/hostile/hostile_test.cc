// Hostile guests against the VMM (seccomp filters on, the default): a guest that writes random
// values into every virtio-mmio register and its rings and resets devices mid-request, and one
// that hammers unbacked ports and MMIO. The VMM survives (or stops cleanly with a message),
// leaves the disks alone, does not flood its log, and a second VM running next to them is
// unaffected.
#include <sys/stat.h>
#include <sys/wait.h>

#include <future>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/jailer/spawn.h"
#include "tests/support/hearth_runner.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/vm_config.h"

namespace hearth::testing {
namespace {

using ::testing::HasSubstr;

constexpr size_t kDiskBytes = 1 << 20;

// The fuzz guest with two drives (Sync and Async engines) on 1 MiB zeroed images.
std::string FuzzConfig(const TempDir& dir) {
  for (const char* name : {"d0.img", "d1.img"}) dir.Write(name, std::string(kDiskBytes, '\0'));
  std::string drives = "[{\"drive_id\": \"d0\", \"path_on_host\": \"" + dir.Path("d0.img") +
                       "\", \"is_root_device\": false, \"is_read_only\": false},"
                       " {\"drive_id\": \"d1\", \"path_on_host\": \"" + dir.Path("d1.img") +
                       "\", \"is_root_device\": false, \"is_read_only\": false, \"io_engine\": \"Async\"}]";
  return VmConfigJson(HEARTH_GUEST_VIRTIO_FUZZ).MemMib(128).SetRaw("", "drives", drives).Str();
}

void ExpectSurvived(const ProcessResult& r, const TempDir& dir) {
  EXPECT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("fuzz: survived"));
  // Warnings are logged once per kind, not per access.
  EXPECT_LT(SplitLines(r.err).size(), 60u) << r.err;
  for (const char* name : {"d0.img", "d1.img"}) {
    struct stat st {};
    ASSERT_EQ(::stat(dir.Path(name).c_str(), &st), 0);
    EXPECT_EQ(static_cast<size_t>(st.st_size), kDiskBytes) << name;
  }
}

TEST(HostileGuest, RandomRegisterAndRingWritesWithResetsMidRequest) {
  TempDir dir;
  ProcessResult r = RunHearthWithConfig(dir, FuzzConfig(dir));
  ExpectSurvived(r, dir);
}

TEST(HostileGuest, ASecondVmIsUnaffected) {
  TempDir quiet_dir;
  quiet_dir.Write("vm.json", VmConfigJson(HEARTH_GUEST_ECHO).Str());
  Spawned quiet({HearthBinary(), "--no-api", "--config-file", quiet_dir.Path("vm.json")},
                quiet_dir.Path("out"), quiet_dir.Path("err"));
  TempDir fuzz_dir, io_dir;
  auto fuzz = std::async(std::launch::async, [&] { return RunHearthWithConfig(fuzz_dir, FuzzConfig(fuzz_dir)); });
  auto io = std::async(std::launch::async, [&] {
    return RunHearth(io_dir, VmConfigJson(HEARTH_GUEST_HOSTILE_IO).MemMib(128));
  });
  // While they run, the quiet VM answers (the fuzz guest takes several seconds).
  std::this_thread::sleep_for(std::chrono::seconds(1));
  quiet.WriteStdin("still here\n");
  int status = quiet.Wait(std::chrono::seconds(60));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFile(quiet_dir.Path("err"));
  EXPECT_EQ(ReadFile(quiet_dir.Path("out")), "echo: STILL HERE\n");
  EXPECT_EQ(fuzz.wait_for(std::chrono::seconds(0)), std::future_status::timeout)
      << "the fuzz guest ended before the quiet VM answered: the check proved nothing";
  ProcessResult fuzzed = fuzz.get();
  ProcessResult hammered = io.get();
  ExpectSurvived(fuzzed, fuzz_dir);
  EXPECT_TRUE(hammered.ExitedWith(0)) << hammered.Describe();
  EXPECT_THAT(hammered.out, HasSubstr("survived"));
}

}  // namespace
}  // namespace hearth::testing
