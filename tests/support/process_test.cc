// Unit tests of the test-support library itself (no KVM).

#include "tests/support/process.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/support/temp_dir.h"
#include "tests/support/vm_config.h"

namespace hearth::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(RunProcess, CapturesStdoutStderrAndExitCode) {
  ProcessResult r = RunProcess(
      {"/bin/sh", "-c", "echo out; echo err >&2; exit 7"}, seconds(10));
  EXPECT_EQ(r.exit_code, 7) << r.Describe();
  EXPECT_EQ(r.term_signal, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_TRUE(r.ExitedWith(7));
}

TEST(RunProcess, RunsEcho) {
  ProcessResult r = RunProcess({"/bin/echo", "a", "b"}, seconds(10));
  EXPECT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_EQ(r.out, "a b\n");
}

TEST(RunProcess, FeedsStdin) {
  std::string big(1 << 20, 'x');  // Larger than a pipe buffer.
  ProcessResult r = RunProcess({"/bin/cat"}, seconds(10), big);
  EXPECT_TRUE(r.ExitedWith(0)) << r.exit_code;
  EXPECT_EQ(r.out, big);
}

TEST(RunProcess, SurvivesChildIgnoringStdin) {
  std::string big(1 << 20, 'x');
  ProcessResult r = RunProcess({"/bin/true"}, seconds(10), big);
  EXPECT_TRUE(r.ExitedWith(0)) << r.Describe();
}

TEST(RunProcess, KillsProcessGroupOnTimeout) {
  auto start = std::chrono::steady_clock::now();
  // The grandchild holds stdout open; the timeout must still win.
  ProcessResult r =
      RunProcess({"/bin/sh", "-c", "sleep 100 & sleep 100"}, milliseconds(300));
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_FALSE(r.ExitedWith(0));
  EXPECT_LT(elapsed, seconds(5));
}

TEST(RunProcess, DoesNotWaitForBackgroundDescendants) {
  auto start = std::chrono::steady_clock::now();
  ProcessResult r =
      RunProcess({"/bin/sh", "-c", "sleep 100 & echo done"}, seconds(20));
  EXPECT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_EQ(r.out, "done\n");
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
}

TEST(RunProcess, ReportsMissingProgram) {
  ProcessResult r = RunProcess({"/nonexistent/program"}, seconds(10));
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_NE(r.err.find("/nonexistent/program"), std::string::npos) << r.err;
}

TEST(RunProcess, ReportsTerminatingSignal) {
  ProcessResult r = RunProcess({"/bin/sh", "-c", "kill -TERM $$"}, seconds(10));
  EXPECT_EQ(r.term_signal, SIGTERM) << r.Describe();
  EXPECT_EQ(r.exit_code, -1);
}

TEST(SplitLines, SplitsWithoutTrailingEmptyLine) {
  EXPECT_EQ(SplitLines("a\nb\n"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(SplitLines("a\n\nb"), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_TRUE(SplitLines("").empty());
}

TEST(TempDir, WritesFilesAndCleansUp) {
  std::string dir;
  {
    TempDir tmp;
    dir = tmp.path();
    std::string p = tmp.Write("f.txt", "content", 0600);
    std::ifstream f(p);
    std::stringstream s;
    s << f.rdbuf();
    EXPECT_EQ(s.str(), "content");
    EXPECT_EQ(p, tmp.Path("f.txt"));
  }
  EXPECT_FALSE(std::ifstream(dir + "/f.txt").good());
}

TEST(VmConfigJson, BuildsFirecrackerShape) {
  auto j = nlohmann::json::parse(
      VmConfigJson("/k").BootArgs("console=ttyS0").Vcpus(2).MemMib(256).Str());
  EXPECT_EQ(j["boot-source"]["kernel_image_path"], "/k");
  EXPECT_EQ(j["boot-source"]["boot_args"], "console=ttyS0");
  EXPECT_FALSE(j["boot-source"].contains("initrd_path"));
  EXPECT_EQ(j["machine-config"]["vcpu_count"], 2);
  EXPECT_EQ(j["machine-config"]["mem_size_mib"], 256);
  EXPECT_EQ(j["machine-config"]["smt"], false);
}

TEST(VmConfigJson, AppliesRawEditsAndRemovals) {
  auto j = nlohmann::json::parse(
      VmConfigJson("/k")
          .SetRaw("machine-config", "vcpu_count", "\"two\"")
          .SetRaw("", "bogus", "{}")
          .Remove("boot-source", "kernel_image_path")
          .Str());
  EXPECT_EQ(j["machine-config"]["vcpu_count"], "two");
  EXPECT_TRUE(j.contains("bogus"));
  EXPECT_FALSE(j["boot-source"].contains("kernel_image_path"));
}

TEST(HearthBinary, IsAnAbsolutePath) {
  EXPECT_EQ(HearthBinary().front(), '/') << HearthBinary();
}

}  // namespace
}  // namespace hearth::testing
