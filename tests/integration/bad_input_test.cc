// Bad configuration and command lines: hearth must exit promptly with the
// documented code (153 bad configuration, 154 bad arguments) and one
// "hearth: error: ..." line naming the field or file.

#include <elf.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/hearth_runner.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/vm_config.h"

namespace hearth::testing {
namespace {

constexpr int kBadConfig = 153;
constexpr int kBadArguments = 154;

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Checks the exit code and that stderr has the error line naming one of
// `names` (a field or a file).
void ExpectError(const ProcessResult& r, int code,
                 const std::vector<std::string>& names) {
  EXPECT_FALSE(r.timed_out) << r.Describe();
  EXPECT_LT(r.seconds, 10.0) << r.Describe();
  EXPECT_TRUE(r.ExitedWith(code)) << "expected exit " << code << "\n"
                                  << r.Describe();
  EXPECT_NE(r.err.find("hearth: error: "), std::string::npos) << r.err;
  bool named = false;
  for (const std::string& n : names) {
    named = named || r.err.find(n) != std::string::npos;
  }
  EXPECT_TRUE(named) << "stderr names none of: "
                     << ::testing::PrintToString(names) << "\n"
                     << r.err;
}

ProcessResult RunConfig(const TempDir& dir, const VmConfigJson& config) {
  return RunHearth(dir, config);
}

// ---- kernel and initrd files -------------------------------------------

TEST(BadKernel, MissingFileIsConfigError) {
  TempDir dir;
  std::string path = dir.Path("no-such-kernel.elf");
  ExpectError(RunConfig(dir, VmConfigJson(path)), kBadConfig, {path});
}

TEST(BadKernel, DirectoryIsConfigError) {
  TempDir dir;
  ExpectError(RunConfig(dir, VmConfigJson(dir.path())), kBadConfig,
              {dir.path()});
}

TEST(BadKernel, UnreadableFileIsConfigError) {
  TempDir dir;
  std::string path = dir.Write("kernel.elf", ReadFile(HEARTH_GUEST_HELLO), 0);
  // Root reads mode-000 files through CAP_DAC_OVERRIDE; drop it (and
  // CAP_DAC_READ_SEARCH) from the bounding set so the exec'd hearth lacks
  // it. Root still owns /dev/kvm, so that stays openable.
  ProcessResult r = RunHearthWithConfig(
      dir, VmConfigJson(path).Str(), {}, {},
      {"setpriv", "--bounding-set=-dac_override,-dac_read_search"});
  ExpectError(r, kBadConfig, {path});
}

TEST(BadKernel, NeitherElfNorBzImageIsConfigError) {
  TempDir dir;
  std::string path =
      dir.Write("kernel.txt", std::string(8192, 'k') + "not a kernel\n");
  ExpectError(RunConfig(dir, VmConfigJson(path)), kBadConfig, {path});
}

TEST(BadKernel, EmptyFileIsConfigError) {
  TempDir dir;
  std::string path = dir.Write("empty.elf", "");
  ExpectError(RunConfig(dir, VmConfigJson(path)), kBadConfig, {path});
}

TEST(BadKernel, ElfCutInHalfIsConfigError) {
  TempDir dir;
  std::string elf = ReadFile(HEARTH_GUEST_HELLO);
  ASSERT_GT(elf.size(), 1000u);
  std::string path = dir.Write("half.elf", elf.substr(0, elf.size() / 2));
  ExpectError(RunConfig(dir, VmConfigJson(path)), kBadConfig, {path});
}

TEST(BadKernel, ElfCutAt100BytesIsConfigError) {
  TempDir dir;
  std::string path =
      dir.Write("short.elf", ReadFile(HEARTH_GUEST_HELLO).substr(0, 100));
  ExpectError(RunConfig(dir, VmConfigJson(path)), kBadConfig, {path});
}

TEST(BadKernel, BzImageCutShortIsConfigError) {
  TempDir dir;
  std::string image = ReadFile(HEARTH_GUEST_BZIMAGE);
  ASSERT_GT(image.size(), 1100u);
  std::string path = dir.Write("short.bzImage", image.substr(0, 1100));
  ExpectError(RunConfig(dir, VmConfigJson(path)), kBadConfig, {path});
}

TEST(BadKernel, KernelLargerThanMemoryIsConfigError) {
  TempDir dir;
  // The guest is linked at 1 MiB; 1 MiB of RAM leaves no room for it.
  ExpectError(RunConfig(dir, VmConfigJson(HEARTH_GUEST_HELLO).MemMib(1)),
              kBadConfig,
              {HEARTH_GUEST_HELLO, "kernel_image_path", "mem_size_mib"});
}

TEST(BadKernel, SegmentBeyondMemoryIsConfigError) {
  TempDir dir;
  std::string elf = ReadFile(HEARTH_GUEST_HELLO);
  Elf64_Ehdr eh;
  ASSERT_GE(elf.size(), sizeof eh);
  std::memcpy(&eh, elf.data(), sizeof eh);
  int patched = 0;
  for (int i = 0; i < eh.e_phnum; ++i) {
    size_t off = eh.e_phoff + static_cast<size_t>(i) * eh.e_phentsize;
    Elf64_Phdr ph;
    ASSERT_LE(off + sizeof ph, elf.size());
    std::memcpy(&ph, elf.data() + off, sizeof ph);
    if (ph.p_type != PT_LOAD) continue;
    ph.p_memsz = 0x7ff00000;  // ~2 GiB from 1 MiB, with 128 MiB of RAM.
    std::memcpy(elf.data() + off, &ph, sizeof ph);
    ++patched;
  }
  ASSERT_EQ(patched, 1);
  std::string path = dir.Write("huge.elf", elf);
  ExpectError(RunConfig(dir, VmConfigJson(path).MemMib(128)), kBadConfig,
              {path, "kernel_image_path", "mem_size_mib"});
}

TEST(BadInitrd, MissingFileIsConfigError) {
  TempDir dir;
  std::string path = dir.Path("no-such-initrd");
  ExpectError(RunConfig(dir, VmConfigJson(HEARTH_GUEST_HELLO).Initrd(path)),
              kBadConfig, {path});
}

TEST(BadInitrd, LargerThanMemoryIsConfigError) {
  TempDir dir;
  std::string path = dir.Write("initrd.img", "");
  ASSERT_EQ(truncate(path.c_str(), 256LL << 20), 0);  // Sparse 256 MiB.
  ExpectError(
      RunConfig(dir, VmConfigJson(HEARTH_GUEST_HELLO).Initrd(path).MemMib(128)),
      kBadConfig, {path, "initrd_path"});
}

// ---- machine-config ------------------------------------------------------

class BadVcpuCount : public ::testing::TestWithParam<int> {};

TEST_P(BadVcpuCount, IsConfigError) {
  TempDir dir;
  ExpectError(
      RunConfig(dir, VmConfigJson(HEARTH_GUEST_HELLO).Vcpus(GetParam())),
      kBadConfig, {"vcpu_count"});
}

INSTANTIATE_TEST_SUITE_P(Counts, BadVcpuCount, ::testing::Values(0, 33, -1));

TEST(BadMachineConfig, OddVcpuCountWithSmtIsConfigError) {
  TempDir dir;
  ExpectError(
      RunConfig(dir, VmConfigJson(HEARTH_GUEST_HELLO).Vcpus(3).Smt(true)),
      kBadConfig, {"vcpu_count", "smt"});
}

TEST(BadMachineConfig, ZeroMemoryIsConfigError) {
  TempDir dir;
  ExpectError(RunConfig(dir, VmConfigJson(HEARTH_GUEST_HELLO).MemMib(0)),
              kBadConfig, {"mem_size_mib"});
}

class HugeMemory : public ::testing::TestWithParam<long long> {};

TEST_P(HugeMemory, IsConfigError) {
  TempDir dir;
  ExpectError(
      RunConfig(dir, VmConfigJson(HEARTH_GUEST_HELLO).MemMib(GetParam())),
      kBadConfig, {"mem_size_mib"});
}

// ~95 TiB and ~9.5 TiB: more than the host can map.
INSTANTIATE_TEST_SUITE_P(Sizes, HugeMemory,
                         ::testing::Values(100000000LL, 10000000LL));

// ---- boot-source ---------------------------------------------------------

TEST(BadBootSource, BootArgsLongerThan2048BytesIsConfigError) {
  TempDir dir;
  std::string args;
  while (args.size() < 3000) args += "word=value ";
  ExpectError(RunConfig(dir, VmConfigJson(HEARTH_GUEST_HELLO).BootArgs(args)),
              kBadConfig, {"boot_args"});
}

TEST(BadBootSource, MissingKernelImagePathIsConfigError) {
  TempDir dir;
  ExpectError(RunConfig(dir, VmConfigJson(HEARTH_GUEST_HELLO)
                                 .Remove("boot-source", "kernel_image_path")),
              kBadConfig, {"kernel_image_path"});
}

TEST(BadBootSource, MissingBootSourceIsConfigError) {
  TempDir dir;
  ExpectError(
      RunConfig(dir,
                VmConfigJson(HEARTH_GUEST_HELLO).Remove("", "boot-source")),
      kBadConfig, {"boot-source", "kernel_image_path"});
}

// ---- JSON shape ----------------------------------------------------------

TEST(BadConfigFile, MissingFileIsConfigError) {
  TempDir dir;
  std::string path = dir.Path("no-such-vm.json");
  ProcessResult r = RunProcess(
      {HearthBinary(), "--no-api", "--config-file", path}, kHearthRunTimeout);
  ExpectError(r, kBadConfig, {path});
}

TEST(BadConfigFile, MalformedJsonIsConfigError) {
  TempDir dir;
  ProcessResult r = RunHearthWithConfig(
      dir, "{\"boot-source\": {\"kernel_image_path\": \"/x\",,}");
  ExpectError(r, kBadConfig, {dir.Path("vm.json"), "JSON", "json"});
}

TEST(BadConfigFile, UnknownTopLevelFieldIsConfigError) {
  TempDir dir;
  ExpectError(RunConfig(dir, VmConfigJson(HEARTH_GUEST_HELLO)
                                 .SetRaw("", "bogus-section", "{\"a\": 1}")),
              kBadConfig, {"bogus-section"});
}

TEST(BadConfigFile, UnknownMachineConfigFieldIsConfigError) {
  TempDir dir;
  ExpectError(RunConfig(dir, VmConfigJson(HEARTH_GUEST_HELLO)
                                 .SetRaw("machine-config", "vcpu_cuont", "2")),
              kBadConfig, {"vcpu_cuont"});
}

TEST(BadConfigFile, UnknownBootSourceFieldIsConfigError) {
  TempDir dir;
  ExpectError(
      RunConfig(dir, VmConfigJson(HEARTH_GUEST_HELLO)
                         .SetRaw("boot-source", "kernel_path", "\"/x\"")),
      kBadConfig, {"kernel_path"});
}

struct WrongType {
  const char* section;
  const char* key;
  const char* raw_json;
  const char* what;  // For the test name; no brackets (ctest lists).
};

void PrintTo(const WrongType& w, std::ostream* os) {
  *os << (*w.section ? w.section : "top") << "." << w.key << " as " << w.what;
}

class BadConfigType : public ::testing::TestWithParam<WrongType> {};

TEST_P(BadConfigType, IsConfigErrorNamingField) {
  const WrongType& w = GetParam();
  TempDir dir;
  ExpectError(RunConfig(dir, VmConfigJson(HEARTH_GUEST_HELLO)
                                 .SetRaw(w.section, w.key, w.raw_json)),
              kBadConfig, {w.key});
}

INSTANTIATE_TEST_SUITE_P(
    Fields, BadConfigType,
    ::testing::Values(
        WrongType{"machine-config", "vcpu_count", "\"two\"", "string"},
        WrongType{"machine-config", "vcpu_count", "1.5", "fraction"},
        WrongType{"machine-config", "mem_size_mib", "\"128\"", "string"},
        WrongType{"machine-config", "mem_size_mib", "-128", "negative"},
        WrongType{"machine-config", "smt", "\"yes\"", "string"},
        WrongType{"boot-source", "kernel_image_path", "42", "number"},
        WrongType{"boot-source", "boot_args", "[\"a\"]", "array"},
        WrongType{"", "machine-config", "[]", "array"}),
    [](const ::testing::TestParamInfo<WrongType>& param) {
      std::string name = param.param.key;
      for (char& c : name) {
        if (c == '-') c = '_';
      }
      return name + "_" + std::to_string(param.index);
    });

// ---- command line --------------------------------------------------------

TEST(BadCommandLine, UnknownFlagIsArgumentError) {
  TempDir dir;
  std::string config =
      dir.Write("vm.json", VmConfigJson(HEARTH_GUEST_HELLO).Str());
  ProcessResult r = RunProcess(
      {HearthBinary(), "--no-api", "--config-file", config, "--bogus-flag"},
      kHearthRunTimeout);
  ExpectError(r, kBadArguments, {"--bogus-flag"});
}

TEST(BadCommandLine, FlagWithoutValueIsArgumentError) {
  ProcessResult r = RunProcess({HearthBinary(), "--no-api", "--config-file"},
                               kHearthRunTimeout);
  ExpectError(r, kBadArguments, {"--config-file"});
}

TEST(BadCommandLine, BadLogLevelIsArgumentError) {
  TempDir dir;
  std::string config =
      dir.Write("vm.json", VmConfigJson(HEARTH_GUEST_HELLO).Str());
  ProcessResult r = RunProcess(
      {HearthBinary(), "--no-api", "--config-file", config, "--level", "Loud"},
      kHearthRunTimeout);
  ExpectError(r, kBadArguments, {"--level", "Loud"});
}

// ---- /dev/kvm --------------------------------------------------------------

TEST(NoKvm, MissingDevKvmIsConfigError) {
  TempDir dir;
  // A private mount namespace whose /dev is an empty tmpfs.
  ProcessResult r =
      RunHearthWithConfig(dir, VmConfigJson(HEARTH_GUEST_HELLO).Str(), {}, {},
                          {"unshare", "-m", "sh", "-c",
                           "mount -t tmpfs none /dev && exec \"$0\" \"$@\""});
  if (r.ExitedWith(1) && r.err.find("unshare") != std::string::npos) {
    GTEST_SKIP() << "cannot unshare the mount namespace: " << r.err;
  }
  ExpectError(r, kBadConfig, {"/dev/kvm"});
}

TEST(NoKvm, DevKvmPermissionDeniedIsConfigError) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to nobody";
  TempDir dir;
  dir.MakeWorldReadable();
  std::string kernel =
      dir.Write("kernel.elf", ReadFile(HEARTH_GUEST_HELLO), 0644);
  ProcessResult r = RunHearthWithConfig(
      dir, VmConfigJson(kernel).Str(), {}, {},
      {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
  ExpectError(r, kBadConfig, {"/dev/kvm"});
}

}  // namespace
}  // namespace hearth::testing
