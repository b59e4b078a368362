// A Linux guest (build/guest, with the in-kernel agent) snapshotted in the middle of a timed
// sleep and restored in a fresh MicroVm: after the restore the sleep ends (the LAPIC timer,
// kvm-clock and interrupts came back), the virtio-blk check writes and reads its disk through
// the restored queues, and the agent powers the guest off. No second boot ("Linux version"
// once). One boot for the whole test: Linux takes 20-60 s to boot on kvm_pvm.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "running_vm.h"
#include "test_util.h"

namespace hearth {
namespace {

using unit::TempDir;

std::string GuestDir() {
  const char* env = std::getenv("HEARTH_GUEST_DIR");
  return env ? env : HEARTH_GUEST_DIR_DEFAULT;
}

bool WaitForText(const RunningVm& vm, const std::string& text, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (vm.Console().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

class LinuxSnapshotTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { Vcpu::InstallKickHandler(); }

  std::unique_ptr<RunningVm> Start(std::unique_ptr<MicroVm> vm, const std::string& console, Fd fd,
                                   EventFd stop) {
    return std::make_unique<RunningVm>(std::move(vm), console, std::move(fd), std::move(stop));
  }
  MicroVmOptions Options(const std::string& console, Fd& fd, EventFd& stop) {
    fd = std::move(Fd::Open(console, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600)).value();
    stop = std::move(EventFd::Create()).value();
    MicroVmOptions o;
    o.host_kind = DetectHostKind();
    o.console_in = -1;
    o.console_out = fd.get();
    o.stop_event_fd = stop.get();
    return o;
  }
  TempDir dir_;
};

TEST_F(LinuxSnapshotTest, SleepEndsAndDiskWorksAfterRestore) {
  const std::string kernel = GuestDir() + "/vmlinux", initrd = GuestDir() + "/initramfs.cpio";
  ASSERT_TRUE(std::filesystem::exists(kernel) && std::filesystem::exists(initrd))
      << "guest artifacts missing in " << GuestDir() << ": run resources/build-guest.sh";
  const std::string disk = dir_.Write("scratch.img", std::vector<uint8_t>(8 << 20));
  VmResources r;
  r.boot_source = BootSourceConfig{
      kernel,
      "console=ttyS0 reboot=k panic=-1 hearth_agent.checks=netwait:15000,blk:vda "
      "hearth_agent.action=poweroff",
      initrd};
  r.machine.mem_size_mib = 256;
  DriveConfig d;
  d.drive_id = "scratch";
  d.path_on_host = disk;
  r.drives.push_back(d);

  const std::string state = dir_.File("linux.snap"), mem = dir_.File("linux.mem");
  std::string before;
  {
    Fd fd;
    EventFd stop = std::move(EventFd::Create()).value();
    MicroVmOptions o = Options(dir_.File("boot.out"), fd, stop);
    BuildError err{BuildStage::kHost, Error("")};
    auto vm = MicroVm::Create(r, o, &err);
    ASSERT_NE(vm, nullptr) << err.error.message();
    auto running = Start(std::move(vm), dir_.File("boot.out"), std::move(fd), std::move(stop));
    ASSERT_TRUE(WaitForText(*running, "hearth-agent: ready", 240s)) << running->Console();
    std::this_thread::sleep_for(1s);  // Into the 15 s sleep.
    ASSERT_OK(running->Pause());
    before = running->Console();
    ASSERT_EQ(before.find("netwait ms="), std::string::npos) << "the sleep ended before the snapshot";
    ASSERT_OK(running->vm().SaveSnapshot({SnapshotType::kFull, state, mem}));
    running->Stop();
  }
  Fd fd;
  EventFd stop = std::move(EventFd::Create()).value();
  MicroVmOptions o = Options(dir_.File("restored.out"), fd, stop);
  LoadSnapshot p;
  p.snapshot_path = state;
  p.backend_path = mem;
  p.resume_vm = true;
  auto vm = MicroVm::RestoreFromSnapshot(p, o);
  ASSERT_OK(vm);
  auto restored = Start(std::move(vm).value(), dir_.File("restored.out"), std::move(fd), std::move(stop));
  ASSERT_TRUE(restored->WaitForExit(300s)) << restored->Console();
  const std::string after = restored->Console();
  EXPECT_TRUE(restored->PoweredOff()) << restored->OutcomeText() << "\n" << after;
  EXPECT_NE(after.find("hearth-agent: netwait ms=15000"), std::string::npos) << after;
  EXPECT_NE(after.find("hearth-agent: blk vda write=ok read=ok"), std::string::npos) << after;
  EXPECT_NE(after.find("hearth-agent: action poweroff"), std::string::npos) << after;
  EXPECT_EQ(after.find("Linux version"), std::string::npos) << "the guest rebooted:\n" << after;
  EXPECT_EQ(Occurrences(before, "Linux version"), 1u);
}

}  // namespace
}  // namespace hearth
