// Helpers for the tests that boot the bundled Linux guest (build/guest/, made
// by resources/build-guest.sh) under the hearth binary and read what the
// in-kernel agent (resources/guest/agent/hearth_agent.c) prints.

#ifndef HEARTH_TESTS_LINUX_LINUX_GUEST_H_
#define HEARTH_TESTS_LINUX_LINUX_GUEST_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/vm_config.h"

namespace hearth::testing {

// One hearth run of the Linux guest: on a kvm_pvm host the kernel is
// interpreted and a boot takes 20-60 s (minutes when the cores are busy).
inline constexpr std::chrono::seconds kLinuxRunTimeout{540};

// Hearth's exit statuses.
inline constexpr int kExitGuestPanic = 3;

// The directory with the guest artifacts: $HEARTH_GUEST_DIR, else the
// compile definition HEARTH_GUEST_DIR_DEFAULT (<repo>/build/guest).
std::string GuestDir();

// The path of the artifact `name` (vmlinux, initramfs.cpio, rootfs.ext4)
// in GuestDir(), or nullopt after adding a test failure that says how to
// build it.
std::optional<std::string> GuestArtifact(std::string_view name);

// `hearth --print-host-kind`: "pvm" or "hardware" (cached). Adds a failure
// and returns "" when hearth cannot tell.
const std::string& HostKind();

// Records the host kind as a test property and prints it.
void RecordHostKind();

// The command line every test starts from: serial console, i8042 reset,
// no reboot on panic (hearth ends on the agent's panic notifier anyway).
inline constexpr std::string_view kBaseBootArgs =
    "console=ttyS0 reboot=k panic=-1";

struct DriveSpec {
  std::string id;
  std::string path;
  bool root = false;
  bool read_only = false;
};
struct NetSpec {
  std::string iface_id;
  std::string host_dev_name;
  std::string guest_mac;
};

// Builds the vm.json for `kernel` with `drives` and `nets` (may be empty).
std::string LinuxConfig(VmConfigJson config,
                        const std::vector<DriveSpec>& drives,
                        const std::vector<NetSpec>& nets);

// Runs hearth on `config_json` in `dir` with `extra_args` (and `prefix`
// before the binary, e.g. `ip netns exec NS`), prints and records the wall
// time under `label`.
ProcessResult BootLinux(const TempDir& dir, const std::string& config_json,
                        const std::string& label,
                        const std::vector<std::string>& extra_args = {},
                        const std::vector<std::string>& prefix = {});

// The first stdout line starting with `prefix`, or "" after adding a failure.
std::string LineStartingWith(const ProcessResult& r, std::string_view prefix);

// The value of `key=` in a "k=v k=v" line, or "".
std::string Field(std::string_view line, std::string_view key);

// ---- The agent's data patterns (see hearth_agent.c) ------------------------
// The 64-bit little-endian word at byte offset `off` (a multiple of 8) of a
// pattern stream is off * kPatternMul + seed; a stream's sum is the wrapping
// 64-bit sum of its words, printed as %016llx.
inline constexpr uint64_t kPatternMul = 0x9e3779b97f4a7c15ull;
inline constexpr uint64_t kSeedBlk = 0x686561727468626cull;    // "hearthbl"
inline constexpr uint64_t kSeedNetTx = 0x6865617274687478ull;  // guest->host
inline constexpr uint64_t kSeedNetRx = 0x6865617274687278ull;  // host->guest

// Writes the pattern bytes [offset, offset + size) (offset and size multiples
// of 8) into `out`.
void FillPattern(uint64_t seed, uint64_t offset, size_t size, char* out);
std::string Pattern(uint64_t seed, size_t size);
// The agent's sum of `bytes` (size a multiple of 8) as 16 hex digits.
std::string PatternSumHex(std::string_view bytes);
uint64_t WordSum(std::string_view bytes);
std::string Hex64(uint64_t v);

std::string ReadFileBytes(const std::string& path, size_t max = SIZE_MAX);
// Copies `from` to `to` (a real copy: the cached artifacts stay untouched).
bool CopyFile(const std::string& from, const std::string& to);

}  // namespace hearth::testing

#endif  // HEARTH_TESTS_LINUX_LINUX_GUEST_H_
