// Boots the tiny test guests (tests/guests) in the hearth binary and checks
// their serial output and hearth's exit code.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/hearth_runner.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/vm_config.h"

namespace hearth::testing {
namespace {

using ::testing::HasSubstr;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Guest RAM in KiB as the contract's e820 describes it: [0, 0x9fc00) and
// [1 MiB, end), the part at or above 0xD0000000 moved above 4 GiB.
long long ExpectedRamKib(long long mem_mib) { return mem_mib * 1024 - 385; }

struct Memmap {
  int entries = -1;
  long long ram_kib = -1;
};

// Parses "memmap: N entries, ram_kib=K".
Memmap ParseMemmap(const std::string& line) {
  std::smatch m;
  static const std::regex re(R"(^memmap: (\d+) entries, ram_kib=(\d+)$)");
  Memmap mm;
  if (std::regex_match(line, m, re)) {
    mm.entries = std::stoi(m[1]);
    mm.ram_kib = std::stoll(m[2]);
  }
  return mm;
}

TEST(TinyGuest, PrintsGreetingCmdlineAndMemmap) {
  TempDir dir;
  ProcessResult r = RunHearth(
      dir, VmConfigJson(HEARTH_GUEST_HELLO).BootArgs("tiny=1 foo=bar"));
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  std::vector<std::string> lines = SplitLines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.Describe();
  EXPECT_EQ(lines[0], "hello from tiny guest");
  EXPECT_EQ(lines[1].rfind("cmdline: ", 0), 0u) << lines[1];
  EXPECT_TRUE(Contains(lines[1], "tiny=1 foo=bar")) << lines[1];
  Memmap mm = ParseMemmap(lines[2]);
  EXPECT_GE(mm.entries, 2) << lines[2];
  EXPECT_EQ(mm.ram_kib, ExpectedRamKib(128)) << lines[2];
}

TEST(TinyGuest, UsesDefaultBootArgsWithConsole) {
  TempDir dir;
  ProcessResult r = RunHearth(dir, VmConfigJson(HEARTH_GUEST_HELLO));
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  std::vector<std::string> lines = SplitLines(r.out);
  ASSERT_GE(lines.size(), 2u) << r.Describe();
  EXPECT_TRUE(Contains(lines[1], "console=ttyS0")) << lines[1];
}

class TinyGuestMemory : public ::testing::TestWithParam<int> {};

TEST_P(TinyGuestMemory, MemmapMatchesMemSize) {
  TempDir dir;
  ProcessResult r =
      RunHearth(dir, VmConfigJson(HEARTH_GUEST_HELLO).MemMib(GetParam()));
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  std::vector<std::string> lines = SplitLines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.Describe();
  Memmap mm = ParseMemmap(lines[2]);
  EXPECT_LE(mm.ram_kib, GetParam() * 1024LL) << lines[2];
  EXPECT_EQ(mm.ram_kib, ExpectedRamKib(GetParam())) << lines[2];
}

// 4096 MiB crosses the MMIO hole at 0xD0000000.
INSTANTIATE_TEST_SUITE_P(Sizes, TinyGuestMemory,
                         ::testing::Values(16, 128, 1000, 4096));

TEST(TinyGuest, BootsWithSmallInitrd) {
  TempDir dir;
  std::string initrd = dir.Write("initrd.img", std::string(100000, 'i'));
  ProcessResult r =
      RunHearth(dir, VmConfigJson(HEARTH_GUEST_HELLO).Initrd(initrd));
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_EQ(SplitLines(r.out).at(0), "hello from tiny guest");
}

TEST(TinyGuest, LogsBootTimeWithBootTimer) {
  TempDir dir;
  ProcessResult r =
      RunHearth(dir, VmConfigJson(HEARTH_GUEST_HELLO), {"--boot-timer"});
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("Guest-boot-time"));
  EXPECT_FALSE(Contains(r.out, "Guest-boot-time")) << r.out;
}

TEST(TinyGuest, NoBootTimeLineWithoutBootTimer) {
  TempDir dir;
  ProcessResult r = RunHearth(dir, VmConfigJson(HEARTH_GUEST_HELLO));
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_FALSE(Contains(r.err, "Guest-boot-time")) << r.err;
}

TEST(TinyGuest, LevelErrorSilencesInfoLogs) {
  TempDir dir;
  ProcessResult r =
      RunHearth(dir, VmConfigJson(HEARTH_GUEST_HELLO), {"--level", "Error"});
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_EQ(SplitLines(r.out).at(0), "hello from tiny guest");
  EXPECT_FALSE(Contains(r.err, "INFO")) << r.err;
}

TEST(TinyGuest, LogPathReceivesLogsAndStdoutStaysSerial) {
  TempDir dir;
  std::string log = dir.Path("hearth.log");
  ProcessResult r = RunHearth(dir, VmConfigJson(HEARTH_GUEST_HELLO),
                              {"--log-path", log, "--boot-timer"});
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_EQ(SplitLines(r.out).size(), 3u) << r.out;
  std::ifstream f(log);
  std::stringstream content;
  content << f.rdbuf();
  EXPECT_THAT(content.str() + r.err, HasSubstr("Guest-boot-time"));
}

TEST(TinyGuest, EchoesSerialInput) {
  TempDir dir;
  ProcessResult r = RunHearth(dir, VmConfigJson(HEARTH_GUEST_ECHO), {},
                              "Hello, Hearth 42!\n");
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_EQ(r.out, "echo: HELLO, HEARTH 42!\n");
}

TEST(TinyGuest, ResetThroughI8042ExitsZero) {
  TempDir dir;
  ProcessResult r = RunHearth(dir, VmConfigJson(HEARTH_GUEST_RESET));
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_EQ(r.out, "resetting\n");
}

TEST(TinyGuest, TripleFaultExitsTwo) {
  TempDir dir;
  ProcessResult r = RunHearth(dir, VmConfigJson(HEARTH_GUEST_TRIPLE_FAULT));
  ASSERT_TRUE(r.ExitedWith(2)) << r.Describe();
  EXPECT_EQ(r.out, "faulting\n");
  EXPECT_THAT(r.err, HasSubstr("triple fault"));
}

TEST(TinyGuest, PanicPortExitsThree) {
  TempDir dir;
  ProcessResult r = RunHearth(dir, VmConfigJson(HEARTH_GUEST_PANIC));
  ASSERT_TRUE(r.ExitedWith(3)) << r.Describe();
  EXPECT_EQ(r.out, "panicking\n");
}

TEST(TinyGuest, SurvivesHostileIoWithoutLogFlood) {
  TempDir dir;
  ProcessResult r =
      RunHearth(dir, VmConfigJson(HEARTH_GUEST_HOSTILE_IO).MemMib(128));
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_EQ(r.out,
            "port 0x1234: ff\n"
            "port 0x2f8: ff\n"
            "port 0xcf8: ffffffff\n"
            "mmio 0xd0000000: ffffffff\n"
            "mmio 0xe0001000: ff\n"
            "mmio 0x3f000000: ffffffff\n"
            "unexpected reads: 0\n"
            "survived\n");
  // 2000 rounds of port I/O and 500 of MMIO: logging each would be
  // thousands of lines; "at most once per port / page" is a handful.
  EXPECT_LE(SplitLines(r.err).size(), 40u) << r.err;
}

TEST(TinyGuest, EntersElfInLongMode) {
  TempDir dir;
  ProcessResult r = RunHearth(
      dir, VmConfigJson(HEARTH_GUEST_LONGMODE).BootArgs("lm=1 quiet"));
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  std::vector<std::string> lines = SplitLines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.Describe();
  EXPECT_EQ(lines[0], "long mode ok");
  EXPECT_EQ(lines[1].rfind("cmdline: ", 0), 0u) << lines[1];
  EXPECT_TRUE(Contains(lines[1], "lm=1 quiet")) << lines[1];
  std::smatch m;
  ASSERT_TRUE(
      std::regex_match(lines[2], m, std::regex(R"(^e820: (\d+) entries$)")))
      << lines[2];
  EXPECT_GE(std::stoi(m[1]), 2);
}

TEST(TinyGuest, EntersBzImageInLongMode) {
  TempDir dir;
  ProcessResult r = RunHearth(
      dir, VmConfigJson(HEARTH_GUEST_BZIMAGE).BootArgs("bz=1 root=/dev/none"));
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  std::vector<std::string> lines = SplitLines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.Describe();
  EXPECT_EQ(lines[0], "bzimage ok");
  EXPECT_EQ(lines[1].rfind("cmdline: ", 0), 0u) << lines[1];
  EXPECT_TRUE(Contains(lines[1], "bz=1 root=/dev/none")) << lines[1];
}

class SmpGuest : public ::testing::TestWithParam<int> {};

TEST_P(SmpGuest, CountsAllCpus) {
  const int n = GetParam();
  TempDir dir;
  ProcessResult r =
      RunHearth(dir, VmConfigJson(HEARTH_GUEST_SMP)
                         .Vcpus(n)
                         .BootArgs("expect_cpus=" + std::to_string(n)));
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_EQ(r.out, "cpus=" + std::to_string(n) + "\n") << r.Describe();
}

// Without the hint the guest waits until the count is stable for 2 s.
TEST(SmpGuestWithoutHint, CountsAllCpus) {
  TempDir dir;
  ProcessResult r =
      RunHearth(dir, VmConfigJson(HEARTH_GUEST_SMP).Vcpus(4).BootArgs("x=1"));
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_EQ(r.out, "cpus=4\n") << r.Describe();
}

INSTANTIATE_TEST_SUITE_P(VcpuCounts, SmpGuest,
                         ::testing::Values(1, 2, 4, 8, 32));

}  // namespace
}  // namespace hearth::testing
