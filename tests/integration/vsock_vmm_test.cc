// The vsock device in the hearth binary: the `vsock` key of the config file attaches it
// (virtio-mmio slot on the kernel command line, the host socket at uds_path), bad uds_paths
// are configuration errors naming vsock, and the socket file does not outlive the VMM. The
// device's protocol is covered on plain memory (tests/virtio/vsock) and through Linux's driver
// (tests/linux LinuxGuestVsock).

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "tests/support/hearth_runner.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/vm_config.h"

namespace hearth::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kBadConfig = 153;

VmConfigJson WithVsock(const std::string& uds_path, int cid = 3) {
  VmConfigJson config(HEARTH_GUEST_HELLO);
  config.SetRaw("", "vsock",
                "{\"guest_cid\": " + std::to_string(cid) + ", \"uds_path\": \"" + uds_path +
                    "\"}");
  return config;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

TEST(VsockVmm, AttachesDeviceAndRemovesSocketAtExit) {
  TempDir dir;
  const std::string uds = dir.Path("v.sock");
  ProcessResult r = RunHearth(dir, WithVsock(uds), {"--level", "Info"});
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("hello from tiny guest"));
  EXPECT_THAT(r.err, HasSubstr("device vsock at MMIO 0x"));
  EXPECT_THAT(r.out, HasSubstr("virtio_mmio.device=4K@0x"));
  EXPECT_FALSE(Exists(uds)) << "the vsock socket outlived the VMM";
}

TEST(VsockVmm, ExistingSocketPathIsConfigError) {
  TempDir dir;
  const std::string uds = dir.Write("v.sock", "taken");
  ProcessResult r = RunHearth(dir, WithVsock(uds));
  EXPECT_TRUE(r.ExitedWith(kBadConfig)) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("hearth: error: "));
  EXPECT_THAT(r.err, HasSubstr("vsock"));
  EXPECT_THAT(r.err, HasSubstr("Address already in use"));
  EXPECT_TRUE(Exists(uds)) << "a file that was there before must stay";
}

TEST(VsockVmm, MissingDirectoryIsConfigError) {
  TempDir dir;
  ProcessResult r = RunHearth(dir, WithVsock(dir.Path("missing/v.sock")));
  EXPECT_TRUE(r.ExitedWith(kBadConfig)) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("vsock"));
  EXPECT_THAT(r.err, HasSubstr("No such file or directory"));
}

}  // namespace
}  // namespace hearth::testing
