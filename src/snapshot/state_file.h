// The snapshot state file: a 24-byte header (magic "HRTHSNAP", format version, flags, payload
// length), the payload (the encoded state, see state_codec.h), and a CRC-64 over header and
// payload. The reader refuses a wrong magic, another format version, a bad checksum and a
// truncated or overlong file, each with its own message; the writer is atomic (AtomicFile).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace hearth {

inline constexpr char kSnapshotMagic[8] = {'H', 'R', 'T', 'H', 'S', 'N', 'A', 'P'};
// Bump on any change to the payload's layout: restore refuses every other version.
// 2: vsock config and state. 3: virtio-blk and virtio-net device state (rate limiter budgets).
inline constexpr uint32_t kSnapshotFormatVersion = 3;
inline constexpr size_t kSnapshotHeaderSize = 24;
inline constexpr size_t kSnapshotTrailerSize = 8;
// A state file is small (registers and device state); anything bigger is not ours.
inline constexpr uint64_t kMaxSnapshotStateBytes = 64ull << 20;

// Header + payload + CRC, as written to disk.
std::vector<uint8_t> EncodeStateFile(std::span<const uint8_t> payload);
// Checks and strips header and CRC. `what` names the file in errors.
Result<std::vector<uint8_t>> DecodeStateFile(std::span<const uint8_t> file, const std::string& what);

Status WriteStateFile(const std::string& path, std::span<const uint8_t> payload);
Result<std::vector<uint8_t>> ReadStateFile(const std::string& path);

// What `--snapshot-version` prints.
std::string SnapshotFormatVersionString();

}  // namespace hearth
