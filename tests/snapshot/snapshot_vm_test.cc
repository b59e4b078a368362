// Whole-VM snapshot tests with the counter guest (tests/guests/counter.S): boot, pause,
// snapshot, tear down, restore in a fresh MicroVm, resume, and check that the count goes on
// from where it stopped without a reboot ("counter start" printed once).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "base/fd.h"
#include "memory/memory_file.h"
#include "snapshot/state_file.h"
#include "test_util.h"
#include "vmm/microvm.h"
#include "vmm/snapshot_cli.h"
#include "vmm/snapshot_state.h"
#include "running_vm.h"

namespace hearth {
namespace {

using unit::TempDir;
using namespace std::chrono_literals;

class SnapshotVmTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { Vcpu::InstallKickHandler(); }

  MicroVmOptions Options(const std::string& console, Fd& console_fd, EventFd& stop) {
    auto fd = Fd::Open(console, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    EXPECT_TRUE(fd.ok());
    console_fd = std::move(fd).value();
    auto ev = EventFd::Create();
    EXPECT_TRUE(ev.ok());
    stop = std::move(ev).value();
    MicroVmOptions o;
    o.host_kind = DetectHostKind();
    o.console_in = -1;
    o.console_out = console_fd.get();
    o.stop_event_fd = stop.get();
    return o;
  }

  std::unique_ptr<RunningVm> Boot(const std::string& console, uint64_t mem_mib = 128,
                                  bool track_dirty = false,
                                  std::optional<VsockConfig> vsock = std::nullopt) {
    VmResources r;
    r.vsock = vsock;
    r.boot_source = BootSourceConfig{HEARTH_GUEST_COUNTER, std::nullopt, std::nullopt};
    r.machine.mem_size_mib = mem_mib;
    r.machine.track_dirty_pages = track_dirty;
    Fd console_fd;
    EventFd stop = std::move(EventFd::Create()).value();
    MicroVmOptions o = Options(console, console_fd, stop);
    BuildError err{BuildStage::kHost, Error("")};
    auto vm = MicroVm::Create(r, o, &err);
    EXPECT_NE(vm, nullptr) << err.error.message();
    if (!vm) return nullptr;
    return std::make_unique<RunningVm>(std::move(vm), console, std::move(console_fd), std::move(stop));
  }

  Result<std::unique_ptr<RunningVm>> Restore(const std::string& console, LoadSnapshot p) {
    Fd console_fd;
    EventFd stop = std::move(EventFd::Create()).value();
    MicroVmOptions o = Options(console, console_fd, stop);
    ASSIGN_OR_RETURN(auto vm, MicroVm::RestoreFromSnapshot(p, o));
    return std::make_unique<RunningVm>(std::move(vm), console, std::move(console_fd), std::move(stop));
  }

  // Boots the counter, lets it count to 5, pauses and snapshots; returns the console so far.
  std::string BootAndSnapshot(const std::string& state, const std::string& mem) {
    auto vm = Boot(dir_.File("boot.out"));
    EXPECT_TRUE(vm && vm->WaitForCounts(5));
    EXPECT_OK(vm->Pause());
    std::string before = vm->Console();
    EXPECT_OK(vm->vm().SaveSnapshot({SnapshotType::kFull, state, mem}));
    vm->Stop();
    return before;
  }

  static LoadSnapshot Load(const std::string& state, const std::string& mem, bool resume = true) {
    LoadSnapshot p;
    p.snapshot_path = state;
    p.backend_path = mem;
    p.resume_vm = resume;
    return p;
  }

  TempDir dir_;
};

// The restored guest goes on counting from the snapshot: the console before the snapshot plus
// the console after the restore is one unbroken count with a single "counter start".
void ExpectContinues(const std::string& before, const std::string& after) {
  EXPECT_EQ(Occurrences(before, "counter start"), 1u);
  EXPECT_EQ(Occurrences(after, "counter start"), 0u) << "the guest rebooted:\n" << after;
  std::vector<long> all = Counts(before + after);
  ASSERT_GE(all.size(), 8u);
  for (size_t i = 1; i < all.size(); ++i) {
    ASSERT_EQ(all[i], all[i - 1] + 1) << "count jumps at line " << i << "\nbefore:\n" << before
                                      << "\nafter:\n" << after;
  }
}

TEST_F(SnapshotVmTest, CounterContinuesAfterRestore) {
  const std::string state = dir_.File("vm.snap"), mem = dir_.File("vm.mem");
  std::string before = BootAndSnapshot(state, mem);
  EXPECT_EQ(std::filesystem::file_size(mem), 128u << 20);
  auto restored = Restore(dir_.File("restored.out"), Load(state, mem));
  ASSERT_OK(restored);
  ASSERT_TRUE((*restored)->WaitForCounts(5)) << (*restored)->Console();
  (*restored)->Stop();
  ExpectContinues(before, (*restored)->Console());

  std::ostringstream out, err;
  EXPECT_EQ(DescribeSnapshot(state, out, err), 0) << err.str();
  EXPECT_NE(out.str().find("machine: 1 vCPU(s), 128 MiB"), std::string::npos) << out.str();
}

// kvm-clock as saved in a state file, in guest nanoseconds.
uint64_t SavedKvmClock(const std::string& state) {
  auto payload = ReadStateFile(state);
  EXPECT_OK(payload);
  if (!payload.ok()) return 0;
  auto decoded = DecodeMicroVmState(*payload);
  EXPECT_OK(decoded);
  return decoded.ok() ? decoded->vm.clock.clock : 0;
}

// Without clock_realtime the guest's clock continues from the snapshot (the 1.5 s spent saved do
// not pass for it); with it, KVM adds the host wall-clock time since the save.
TEST_F(SnapshotVmTest, ClockRealtimeAddsTheTimeSpentSaved) {
  const std::string state = dir_.File("vm.snap"), mem = dir_.File("vm.mem");
  BootAndSnapshot(state, mem);
  const uint64_t saved = SavedKvmClock(state);
  ASSERT_NE(saved, 0u);
  auto payload = ReadStateFile(state);
  ASSERT_OK(payload);
  auto decoded = DecodeMicroVmState(*payload);
  ASSERT_OK(decoded);
  std::this_thread::sleep_for(1500ms);

  for (bool realtime : {false, true}) {
    LoadSnapshot p = Load(state, mem, /*resume=*/false);
    p.clock_realtime = realtime;
    auto restored = Restore(dir_.File("restored.out"), p);
    if (realtime && !(decoded->vm.clock.flags & KVM_CLOCK_REALTIME)) {
      // A host whose clock source is not TSC-based records no realtime base: refused, by name.
      ASSERT_FALSE(restored.ok());
      EXPECT_NE(restored.error().message().find("clock_realtime"), std::string::npos);
      continue;
    }
    ASSERT_OK(restored);
    ASSERT_OK((*restored)->Pause());  // Restored parked: marks it paused at once.
    const std::string again = dir_.File(realtime ? "realtime.snap" : "plain.snap");
    ASSERT_OK((*restored)->vm().SaveSnapshot({SnapshotType::kFull, again, dir_.File("again.mem")}));
    (*restored)->Stop();
    const uint64_t now = SavedKvmClock(again);
    ASSERT_GE(now, saved) << "kvm-clock went backwards";
    if (realtime) {
      EXPECT_GE(now - saved, 1'500'000'000u);
      EXPECT_LT(now - saved, 60'000'000'000u);
    } else {
      EXPECT_LT(now - saved, 1'000'000'000u) << "the time spent saved passed for the guest";
    }
  }
}

TEST_F(SnapshotVmTest, RestoredPausedWaitsForResume) {
  const std::string state = dir_.File("vm.snap"), mem = dir_.File("vm.mem");
  std::string before = BootAndSnapshot(state, mem);
  auto restored = Restore(dir_.File("restored.out"), Load(state, mem, /*resume=*/false));
  ASSERT_OK(restored);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(Counts((*restored)->Console()).size(), 0u);
  ASSERT_OK((*restored)->Pause());  // Already parked: returns at once.
  (*restored)->vm().ResumeVcpus();
  ASSERT_TRUE((*restored)->WaitForCounts(3));
  (*restored)->Stop();
  ExpectContinues(before, (*restored)->Console());
}

TEST_F(SnapshotVmTest, TwoClonesFromOneSnapshotRunIndependently) {
  const std::string state = dir_.File("vm.snap"), mem = dir_.File("vm.mem");
  std::string before = BootAndSnapshot(state, mem);
  auto a = Restore(dir_.File("a.out"), Load(state, mem));
  auto b = Restore(dir_.File("b.out"), Load(state, mem));
  ASSERT_OK(a);
  ASSERT_OK(b);
  ASSERT_TRUE((*a)->WaitForCounts(5));
  ASSERT_TRUE((*b)->WaitForCounts(5));
  (*a)->Stop();
  (*b)->Stop();
  ExpectContinues(before, (*a)->Console());
  ExpectContinues(before, (*b)->Console());
}

TEST_F(SnapshotVmTest, DiffMergedOntoBaseRestoresTheLaterState) {
  const std::string base = dir_.File("base.mem"), diff = dir_.File("diff.mem");
  auto vm = Boot(dir_.File("boot.out"), 128, /*track_dirty=*/true);
  ASSERT_TRUE(vm && vm->WaitForCounts(3));
  ASSERT_OK(vm->Pause());
  ASSERT_OK(vm->vm().SaveSnapshot({SnapshotType::kFull, dir_.File("base.snap"), base}));
  vm->vm().ResumeVcpus();
  size_t seen = Counts(vm->Console()).size();
  ASSERT_TRUE(vm->WaitForCounts(seen + 5));
  ASSERT_OK(vm->Pause());
  std::string before = vm->Console();
  ASSERT_OK(vm->vm().SaveSnapshot({SnapshotType::kDiff, dir_.File("diff.snap"), diff}));
  vm->Stop();
  // The diff holds far fewer bytes than the guest's memory.
  struct stat st {};
  ASSERT_EQ(::stat(diff.c_str(), &st), 0);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, 8u << 20);
  ASSERT_OK(MergeDiffMemoryFile(diff, base));
  auto restored = Restore(dir_.File("restored.out"), Load(dir_.File("diff.snap"), base));
  ASSERT_OK(restored);
  ASSERT_TRUE((*restored)->WaitForCounts(3));
  (*restored)->Stop();
  ExpectContinues(before, (*restored)->Console());
}

TEST_F(SnapshotVmTest, SnapshotWhileRunningIsRefused) {
  auto vm = Boot(dir_.File("boot.out"));
  ASSERT_TRUE(vm && vm->WaitForCounts(1));
  EXPECT_ERROR_CONTAINS(vm->vm().SaveSnapshot({SnapshotType::kFull, dir_.File("s"), dir_.File("m")}),
                        "the VM must be paused to create a snapshot");
  EXPECT_FALSE(std::filesystem::exists(dir_.File("s")));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("m")));
}

TEST_F(SnapshotVmTest, SnapshotIntoMissingDirectoryIsRefused) {
  auto vm = Boot(dir_.File("boot.out"));
  ASSERT_TRUE(vm && vm->WaitForCounts(1));
  ASSERT_OK(vm->Pause());
  EXPECT_ERROR_CONTAINS(
      vm->vm().SaveSnapshot({SnapshotType::kFull, dir_.File("nodir/s"), dir_.File("nodir/m")}),
      "nodir is not usable: No such file or directory");
  // The VM is still usable: it resumes and counts on.
  size_t seen = Counts(vm->Console()).size();
  vm->vm().ResumeVcpus();
  EXPECT_TRUE(vm->WaitForCounts(seen + 2));
}

TEST_F(SnapshotVmTest, DiffWithoutDirtyTrackingIsRefused) {
  auto vm = Boot(dir_.File("boot.out"));
  ASSERT_TRUE(vm && vm->WaitForCounts(1));
  ASSERT_OK(vm->Pause());
  EXPECT_ERROR_CONTAINS(vm->vm().SaveSnapshot({SnapshotType::kDiff, dir_.File("s"), dir_.File("m")}),
                        "dirty page tracking is off");
  EXPECT_FALSE(std::filesystem::exists(dir_.File("m")));
}

TEST_F(SnapshotVmTest, BadStateAndMemoryFilesAreRefused) {
  const std::string state = dir_.File("vm.snap"), mem = dir_.File("vm.mem");
  BootAndSnapshot(state, mem);
  const std::string good = ReadAll(state);

  auto expect_refused = [&](const std::string& bytes, const std::string& memfile, const std::string& fragment) {
    std::string path = dir_.File("bad.snap");
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    auto r = Restore(dir_.File("bad.out"), Load(path, memfile));
    EXPECT_ERROR_CONTAINS(r, fragment);
  };
  std::string corrupted = good;
  corrupted[corrupted.size() / 2] ^= 0x40;
  expect_refused(corrupted, mem, "checksum mismatch");
  expect_refused(good.substr(0, good.size() - 100), mem, "truncated");
  std::string other_version = good;
  other_version[8] = 9;
  expect_refused(other_version, mem, "snapshot format version 9");
  expect_refused("not a snapshot at all", mem, "wrong magic");

  // A memory file of the wrong size.
  std::string small = dir_.File("small.mem");
  std::filesystem::copy_file(mem, small);
  std::filesystem::resize_file(small, (128u << 20) - 4096);
  expect_refused(good, small, "the snapshot's guest memory is 134217728 bytes");
  expect_refused(good, dir_.File("absent.mem"), "absent.mem");

  LoadSnapshot uffd = Load(state, dir_.File("no-handler.sock"));
  uffd.backend_type = MemBackendType::kUffd;
  EXPECT_ERROR_CONTAINS(Restore(dir_.File("u.out"), uffd), "connect mem_backend (Uffd)");
}

// A VM with a vsock device: the snapshot keeps its configuration; the restore rebuilds the
// device bound at vsock_override.uds_path (or the saved path, which must be free).
TEST_F(SnapshotVmTest, VsockDeviceIsRebuiltAtTheOverridePath) {
  const std::string state = dir_.File("vsock.snap"), mem = dir_.File("vsock.mem");
  const std::string saved_path = dir_.File("v.sock"), override_path = dir_.File("clone.sock");
  std::string before;
  {
    auto vm = Boot(dir_.File("boot.out"), 128, false, VsockConfig{3, saved_path, "vsock0"});
    ASSERT_TRUE(vm && vm->WaitForCounts(5));
    ASSERT_OK(vm->Pause());
    before = vm->Console();
    ASSERT_OK(vm->vm().SaveSnapshot({SnapshotType::kFull, state, mem}));
    // The original VM still holds the saved path: restoring onto it is refused, clearly.
    EXPECT_ERROR_CONTAINS(Restore(dir_.File("busy.out"), Load(state, mem)),
                          "vsock: uds_path " + saved_path + " already exists");
    vm->Stop();
  }
  std::ostringstream described, described_err;
  EXPECT_EQ(DescribeSnapshot(state, described, described_err), 0) << described_err.str();
  EXPECT_NE(described.str().find("vsock vsock0: guest_cid 3, uds_path " + saved_path), std::string::npos)
      << described.str();

  LoadSnapshot p = Load(state, mem);
  p.vsock_uds_path = override_path;
  auto restored = Restore(dir_.File("restored.out"), p);
  ASSERT_OK(restored);
  RunningVm& clone = **restored;
  ASSERT_TRUE(clone.vm().resources().vsock.has_value());
  EXPECT_EQ(clone.vm().resources().vsock->guest_cid, 3u);
  EXPECT_EQ(clone.vm().resources().vsock->uds_path, override_path);
  EXPECT_EQ(clone.vm().resources().vsock->vsock_id, std::optional<std::string>("vsock0"));
  struct stat st {};
  ASSERT_EQ(::stat(override_path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  // A host program can connect to the restored device's listener.
  Fd host(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, override_path.c_str(), sizeof(addr.sun_path) - 1);
  EXPECT_EQ(::connect(host.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << std::strerror(errno);
  ASSERT_TRUE(clone.WaitForCounts(3));
  ExpectContinues(before, clone.Console());

  // The saved path is free again (the original VM is gone): a second clone takes it.
  auto second = Restore(dir_.File("second.out"), Load(state, mem));
  ASSERT_OK(second);
  EXPECT_EQ((*second)->vm().resources().vsock->uds_path, saved_path);
  ASSERT_EQ(::stat(saved_path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
}

TEST_F(SnapshotVmTest, VsockOverrideWithoutVsockDeviceIsRefused) {
  const std::string state = dir_.File("vm.snap"), mem = dir_.File("vm.mem");
  BootAndSnapshot(state, mem);
  LoadSnapshot p = Load(state, mem);
  p.vsock_uds_path = dir_.File("x.sock");
  EXPECT_ERROR_CONTAINS(Restore(dir_.File("x.out"), p), "vsock_override: the snapshot has no vsock device");
}

// The Uffd backend: the example handler (a separate process) serves every page from the
// memory file, and the guest counts on.
TEST_F(SnapshotVmTest, UffdHandlerServesRestoredMemory) {
  const std::string state = dir_.File("vm.snap"), mem = dir_.File("vm.mem");
  const std::string sock = dir_.File("uffd.sock");
  std::string before = BootAndSnapshot(state, mem);
  pid_t handler = fork();
  ASSERT_GE(handler, 0);
  if (handler == 0) {
    execl(HEARTH_UFFD_HANDLER, HEARTH_UFFD_HANDLER, sock.c_str(), mem.c_str(), nullptr);
    _exit(127);
  }
  for (int i = 0; i < 500 && !std::filesystem::exists(sock); ++i) std::this_thread::sleep_for(10ms);
  LoadSnapshot p = Load(state, sock);
  p.backend_type = MemBackendType::kUffd;
  {
    auto restored = Restore(dir_.File("restored.out"), p);
    ASSERT_OK(restored);
    ASSERT_TRUE((*restored)->WaitForCounts(5)) << (*restored)->Console();
    (*restored)->Stop();
    ExpectContinues(before, (*restored)->Console());
  }
  // The VM is gone: the handler sees the connection close and exits cleanly.
  int status = 0;
  for (int i = 0; i < 500; ++i) {
    if (waitpid(handler, &status, WNOHANG) == handler) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// Eight clones of one snapshot run at once, each on its own private copy of the memory file:
// every clone's count goes on unbroken from the snapshot (a write seen by another clone would
// make it jump), and the memory file itself is unchanged afterwards.
TEST_F(SnapshotVmTest, EightClonesRunIndependentlyAndLeaveTheMemoryFileUnchanged) {
  const std::string state = dir_.File("vm.snap"), mem = dir_.File("vm.mem");
  std::string before = BootAndSnapshot(state, mem);
  const std::string mem_bytes = ReadAll(mem);
  std::vector<std::unique_ptr<RunningVm>> clones;
  for (int i = 0; i < 8; ++i) {
    auto clone = Restore(dir_.File("clone" + std::to_string(i) + ".out"), Load(state, mem));
    ASSERT_OK(clone);
    clones.push_back(std::move(clone).value());
  }
  for (auto& clone : clones) ASSERT_TRUE(clone->WaitForCounts(5)) << clone->Console();
  for (auto& clone : clones) clone->Stop();
  for (auto& clone : clones) ExpectContinues(before, clone->Console());
  EXPECT_TRUE(ReadAll(mem) == mem_bytes) << "a clone wrote into the snapshot's memory file";
}

// The virtio_blk_log guest (writes, flushes and reads back numbered blocks) is snapshotted in
// the middle of its run and restored: it goes on from the next block without a reboot, every
// block reads back right in the guest, and the image holds every block's last pattern, whether
// written before the snapshot or after. The guest writes round-robin over a 64-block image; a
// host fast enough to finish the run before the test pauses it (hardware virtualization: the
// test polls every 5 ms) gets a run 16 times longer, until a pause lands mid-run.
TEST_F(SnapshotVmTest, DiskWritesBeforeTheSnapshotStayAndTheRestoredGuestGoesOn) {
  constexpr uint32_t kImageBlocks = 64;
  const std::string image = dir_.File("disk.img");
  const std::string state = dir_.File("vm.snap"), mem = dir_.File("vm.mem");
  const std::regex kLine("blk ([0-9]+) w=0 f=0 r=0 data=ok last=0\n");
  auto blocks = [&](const std::string& out) {
    std::vector<uint32_t> done;
    for (auto it = std::sregex_iterator(out.begin(), out.end(), kLine); it != std::sregex_iterator(); ++it) {
      done.push_back(static_cast<uint32_t>(std::stoul((*it)[1])));
    }
    return done;
  };

  uint32_t iterations = kImageBlocks;
  std::string before;
  std::vector<uint32_t> done_before;
  for (;; iterations *= 16) {
    ASSERT_LE(iterations, kImageBlocks << 12) << "the guest always finished before the pause";
    { std::ofstream create(image, std::ios::binary | std::ios::trunc); }
    std::filesystem::resize_file(image, kImageBlocks * 4096);
    VmResources r;
    char args[64];
    std::snprintf(args, sizeof(args), "console=ttyS0 blk.n=0x%x", iterations);
    r.boot_source = BootSourceConfig{HEARTH_GUEST_VIRTIO_BLK_LOG, args, std::nullopt};
    r.machine.mem_size_mib = 32;
    DriveConfig drive;
    drive.drive_id = "disk0";
    drive.path_on_host = image;
    drive.cache_type = CacheType::kWriteback;
    r.drives.push_back(drive);
    Fd console_fd;
    EventFd stop = std::move(EventFd::Create()).value();
    MicroVmOptions o = Options(dir_.File("boot.out"), console_fd, stop);
    BuildError err{BuildStage::kHost, Error("")};
    auto built = MicroVm::Create(r, o, &err);
    ASSERT_NE(built, nullptr) << err.error.message();
    RunningVm vm(std::move(built), dir_.File("boot.out"), std::move(console_fd), std::move(stop));
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (blocks(vm.Console()).size() < 8 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    // A guest that finished has powered off: the pause fails then.
    const Status paused = vm.Pause();
    before = vm.Console();
    done_before = blocks(before);
    ASSERT_GE(done_before.size(), 8u) << before;
    if (paused.ok() && done_before.size() < iterations) {
      ASSERT_OK(vm.vm().SaveSnapshot({SnapshotType::kFull, state, mem}));
      vm.Stop();
      break;
    }
    ASSERT_EQ(done_before.size(), iterations)
        << "the pause failed mid-run: " << (paused.ok() ? "" : paused.error().message()) << before;
    vm.Stop();  // Finished before the pause: again, longer.
  }

  auto restored = Restore(dir_.File("restored.out"), Load(state, mem));
  ASSERT_OK(restored);
  ASSERT_TRUE((*restored)->WaitForExit(120s)) << (*restored)->Console();
  EXPECT_TRUE((*restored)->PoweredOff()) << (*restored)->OutcomeText();
  const std::string after = (*restored)->Console();
  EXPECT_NE(after.find("blk: done"), std::string::npos) << after;
  EXPECT_EQ(after.find("blk: capacity"), std::string::npos) << "the guest rebooted:\n" << after;
  std::vector<uint32_t> all = done_before;
  for (uint32_t i : blocks(after)) all.push_back(i);
  ASSERT_EQ(all.size(), iterations) << "before:\n" << before << "\nafter:\n" << after;
  for (uint32_t i = 0; i < iterations; ++i) ASSERT_EQ(all[i], i);

  // Block b holds the pattern of the last iteration that wrote it.
  const std::string disk = ReadAll(image);
  ASSERT_EQ(disk.size(), kImageBlocks * 4096u);
  for (uint32_t b = 0; b < kImageBlocks; ++b) {
    const uint32_t last = iterations - kImageBlocks + b;
    for (uint32_t k = 0; k < 1024; ++k) {
      uint32_t word;
      std::memcpy(&word, disk.data() + b * 4096 + k * 4, 4);
      ASSERT_EQ(word, 0x5a000000u + (last << 12) + k) << "block " << b << " dword " << k;
    }
  }
}

}  // namespace
}  // namespace hearth
