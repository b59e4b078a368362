// Boots the bundled Linux guest (initramfs) under hearth and checks, through
// the in-kernel agent's lines on the serial console and hearth's exit status
// and log: vCPUs and memory as configured, the boot timer, power-off, reset
// through the i8042, a guest panic, and that the kernel starts init.
//
// On a kvm_pvm host each boot costs 20-60 s of interpreted guest kernel code,
// so every test boots once.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>
#include <string>

#include "tests/linux/linux_guest.h"
#include "tests/support/api_client.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/vm_config.h"

namespace hearth::testing {
namespace {

using ::testing::HasSubstr;

// Initramfs boot with the agent's `checks` and `action`.
VmConfigJson InitramfsConfig(const std::string& kernel,
                             const std::string& initrd,
                             const std::string& agent_args) {
  VmConfigJson config(kernel);
  config.Initrd(initrd).BootArgs(std::string(kBaseBootArgs) + " " + agent_args);
  return config;
}

// Boot 1: two vCPUs and 256 MiB; power-off ends hearth with 0 and the boot
// timer fires.
TEST(LinuxGuestBoot, TwoVcpusMemoryBootTimerAndPowerOff) {
  RecordHostKind();
  auto kernel = GuestArtifact("vmlinux");
  auto initrd = GuestArtifact("initramfs.cpio");
  ASSERT_TRUE(kernel && initrd);
  TempDir dir;
  VmConfigJson config = InitramfsConfig(
      *kernel, *initrd,
      "hearth_agent.checks=cpus,mem hearth_agent.action=poweroff");
  config.Vcpus(2).MemMib(256);
  ProcessResult r = BootLinux(dir, LinuxConfig(config, {}, {}), "boot",
                              {"--boot-timer", "--level", "Info"});
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("hearth-agent: ready"));

  const std::string cpus = LineStartingWith(r, "hearth-agent: cpus ");
  EXPECT_EQ(Field(cpus, "online"), "2") << cpus;
  EXPECT_EQ(Field(cpus, "possible"), "2") << cpus;

  // The E820 RAM entries cover 256 MiB less at most 1 MiB (the legacy hole
  // below 1 MiB).
  const std::string mem = LineStartingWith(r, "hearth-agent: mem ");
  const std::string ram = Field(mem, "e820_ram_kib");
  ASSERT_FALSE(ram.empty()) << mem;
  const long long ram_kib = std::stoll(ram);
  EXPECT_GE(ram_kib, 255LL * 1024) << mem;
  EXPECT_LE(ram_kib, 256LL * 1024) << mem;

  EXPECT_THAT(r.out, HasSubstr("hearth-agent: action poweroff"));
  EXPECT_THAT(r.err, HasSubstr("Guest-boot-time = ")) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("VM stopped: the guest powered off"));
}

// Boot 2, driven through the REST API as an orchestrator would: configure, InstanceStart, pause
// the booting kernel (nothing runs while paused), resume; the agent's reboot with `reboot=k`
// resets through the i8042, which ends hearth with 0.
TEST(LinuxGuestBoot, ThroughTheApiWithPauseResumeAndRebootThroughI8042) {
  RecordHostKind();
  auto kernel = GuestArtifact("vmlinux");
  auto initrd = GuestArtifact("initramfs.cpio");
  ASSERT_TRUE(kernel && initrd);
  TempDir dir;
  HearthApiProcess vmm(dir);
  ASSERT_TRUE(vmm.ready()) << vmm.Stderr();
  const std::string boot_args = std::string(kBaseBootArgs) + " hearth_agent.checks=cpus hearth_agent.action=reboot";
  nlohmann::json boot{{"kernel_image_path", *kernel}, {"initrd_path", *initrd}, {"boot_args", boot_args}};
  ASSERT_EQ(vmm.Call("PUT", "/boot-source", boot.dump()).status, 204);
  ASSERT_EQ(vmm.Call("PUT", "/machine-config", R"({"vcpu_count":1,"mem_size_mib":128})").status, 204);
  ASSERT_EQ(vmm.Call("PUT", "/actions", R"({"action_type":"InstanceStart"})").status, 204);
  ASSERT_TRUE(vmm.WaitForOutput("Linux version", std::chrono::seconds(120))) << vmm.Stderr();
  ASSERT_EQ(vmm.Call("PATCH", "/vm", R"({"state":"Paused"})").status, 204);
  const std::string at_pause = vmm.Stdout();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(vmm.Stdout(), at_pause) << "the guest kernel ran while paused";
  ASSERT_EQ(vmm.Call("PATCH", "/vm", R"({"state":"Resumed"})").status, 204);
  auto code = vmm.Wait(kLinuxRunTimeout);
  ASSERT_TRUE(code.has_value()) << "the guest did not finish booting after resume\n" << vmm.Stdout();
  EXPECT_EQ(*code, 0) << vmm.Stdout() << vmm.Stderr();
  const std::string out = vmm.Stdout();
  EXPECT_THAT(out, HasSubstr("hearth-agent: cpus online=1"));
  EXPECT_THAT(out, HasSubstr("hearth-agent: action reboot"));
  EXPECT_THAT(vmm.Stderr(), HasSubstr("the guest reset the CPU through the i8042"));
}

// Boot 3: a guest kernel panic reaches hearth through the agent's panic
// notifier (power port 0x3f4 <- 1): exit status 3.
TEST(LinuxGuestBoot, PanicEndsHearthWithStatus3) {
  RecordHostKind();
  auto kernel = GuestArtifact("vmlinux");
  auto initrd = GuestArtifact("initramfs.cpio");
  ASSERT_TRUE(kernel && initrd);
  TempDir dir;
  VmConfigJson config =
      InitramfsConfig(*kernel, *initrd, "hearth_agent.action=panic");
  config.Vcpus(1).MemMib(128);
  ProcessResult r = BootLinux(dir, LinuxConfig(config, {}, {}), "boot");
  ASSERT_TRUE(r.ExitedWith(kExitGuestPanic)) << r.Describe();
  EXPECT_THAT(r.out,
              HasSubstr("Kernel panic - not syncing: hearth-agent: requested "
                        "panic"));
  EXPECT_THAT(r.err, HasSubstr("panicked"));
}

// Boot 4: the kernel starts /init from the initramfs. Where guest user space
// runs (hardware virtualisation), the busybox init prints its marker, runs a
// command and powers off. On a kvm_pvm host user space cannot make system
// calls (init dies at its first one), so the test checks that the kernel got
// as far as starting init and that init's death is reported as a panic.
TEST(LinuxGuestBoot, InitramfsInit) {
  RecordHostKind();
  auto kernel = GuestArtifact("vmlinux");
  auto initrd = GuestArtifact("initramfs.cpio");
  ASSERT_TRUE(kernel && initrd);
  const std::string& kind = HostKind();
  ASSERT_FALSE(kind.empty());
  TempDir dir;
  VmConfigJson config = InitramfsConfig(
      *kernel, *initrd,
      "hearth_agent.action=none hearth_init.cmd=echo+init-says%3A+hello "
      "hearth_init.then=poweroff");
  config.Vcpus(1).MemMib(128);
  ProcessResult r = BootLinux(dir, LinuxConfig(config, {}, {}), "boot");
  EXPECT_THAT(r.out, HasSubstr("hearth-agent: ready"));
  EXPECT_THAT(r.out, HasSubstr("Run /init as init process")) << r.Describe();
  if (kind == "hardware") {
    ::testing::Test::RecordProperty("userspace", "ran");
    ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
    EXPECT_THAT(r.out, HasSubstr("hearth-init: userspace up"));
    EXPECT_THAT(r.out, HasSubstr("init-says: hello"));
    EXPECT_THAT(r.out, HasSubstr("hearth-init: cmd exit=0"));
  } else {
    std::printf(
        "[   note   ] host kind pvm: guest user space cannot make system "
        "calls here, so the busybox init cannot run; checked instead that "
        "the kernel started /init and that init's death ends hearth with "
        "status 3\n");
    ::testing::Test::RecordProperty("userspace",
                                    "cannot run on a pvm host: checked that "
                                    "the kernel started /init");
    EXPECT_TRUE(r.ExitedWith(kExitGuestPanic)) << r.Describe();
    EXPECT_THAT(r.out, HasSubstr("Attempted to kill init")) << r.Describe();
    EXPECT_THAT(r.out, ::testing::Not(HasSubstr("hearth-init: userspace up")));
  }
}

}  // namespace
}  // namespace hearth::testing
