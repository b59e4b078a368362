#include "snapshot/state_file.h"

#include <fcntl.h>

#include <cstring>

#include "base/atomic_file.h"
#include "base/fd.h"
#include "snapshot/crc64.h"

namespace hearth {

std::vector<uint8_t> EncodeStateFile(std::span<const uint8_t> payload) {
  std::vector<uint8_t> out(kSnapshotHeaderSize + payload.size() + kSnapshotTrailerSize);
  std::memcpy(out.data(), kSnapshotMagic, 8);
  const uint32_t version = kSnapshotFormatVersion;
  const uint32_t flags = 0;
  const uint64_t len = payload.size();
  std::memcpy(out.data() + 8, &version, 4);
  std::memcpy(out.data() + 12, &flags, 4);
  std::memcpy(out.data() + 16, &len, 8);
  if (!payload.empty()) std::memcpy(out.data() + kSnapshotHeaderSize, payload.data(), payload.size());
  const size_t body = kSnapshotHeaderSize + payload.size();
  const uint64_t crc = Crc64(std::span(out.data(), body));
  std::memcpy(out.data() + body, &crc, 8);
  return out;
}

Result<std::vector<uint8_t>> DecodeStateFile(std::span<const uint8_t> file, const std::string& what) {
  if (file.size() < 8 || std::memcmp(file.data(), kSnapshotMagic, 8) != 0) {
    return Error(what + ": not a Hearth snapshot state file (wrong magic)");
  }
  if (file.size() < kSnapshotHeaderSize) return Error(what + ": truncated header");
  uint32_t version, flags;
  uint64_t len;
  std::memcpy(&version, file.data() + 8, 4);
  std::memcpy(&flags, file.data() + 12, 4);
  std::memcpy(&len, file.data() + 16, 8);
  if (version != kSnapshotFormatVersion) {
    return Error(what + ": snapshot format version " + std::to_string(version) +
                 ", this Hearth reads only version " + std::to_string(kSnapshotFormatVersion));
  }
  if (flags != 0) return Error(what + ": unknown header flags " + std::to_string(flags));
  const uint64_t have = file.size() - kSnapshotHeaderSize;
  if (len > kMaxSnapshotStateBytes || len + kSnapshotTrailerSize > have) {
    return Error(what + ": truncated (the header announces " + std::to_string(len) +
                 " bytes of state, the file holds " + std::to_string(have) + " after the header)");
  }
  if (len + kSnapshotTrailerSize < have) {
    return Error(what + ": " + std::to_string(have - len - kSnapshotTrailerSize) +
                 " unexpected bytes after the checksum");
  }
  const size_t body = kSnapshotHeaderSize + len;
  uint64_t stored;
  std::memcpy(&stored, file.data() + body, 8);
  if (Crc64(file.subspan(0, body)) != stored) {
    return Error(what + ": checksum mismatch (the state file is corrupted)");
  }
  return std::vector<uint8_t>(file.begin() + kSnapshotHeaderSize, file.begin() + static_cast<long>(body));
}

Status WriteStateFile(const std::string& path, std::span<const uint8_t> payload) {
  ASSIGN_OR_RETURN(AtomicFile file, AtomicFile::Create(path));
  std::vector<uint8_t> bytes = EncodeStateFile(payload);
  RETURN_IF_ERROR(file.Write(bytes.data(), bytes.size()));
  return file.Commit();
}

Result<std::vector<uint8_t>> ReadStateFile(const std::string& path) {
  ASSIGN_OR_RETURN(Fd fd, Fd::Open(path, O_RDONLY));
  ASSIGN_OR_RETURN(uint64_t size, RegularFileSize(fd.get(), path));
  if (size > kMaxSnapshotStateBytes + kSnapshotHeaderSize + kSnapshotTrailerSize) {
    return Error(path + ": " + std::to_string(size) + " bytes is too large for a state file");
  }
  std::vector<uint8_t> bytes(size);
  RETURN_IF_ERROR(PreadExact(fd.get(), bytes.data(), size, 0, path));
  return DecodeStateFile(bytes, path);
}

std::string SnapshotFormatVersionString() { return std::to_string(kSnapshotFormatVersion) + ".0.0"; }

}  // namespace hearth
