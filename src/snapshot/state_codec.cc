#include "snapshot/state_codec.h"

namespace hearth {

Status StateReader::Take(void* out, size_t n, const char* what) {
  if (n > remaining()) {
    return Error(std::string(what) + ": the state ends early (truncated: " +
                 std::to_string(remaining()) + " bytes left, " + std::to_string(n) + " needed)");
  }
  if (n) std::memcpy(out, data_.data() + pos_, n);
  pos_ += n;
  return Ok();
}

Result<uint8_t> StateReader::U8(const char* what) {
  uint8_t v;
  RETURN_IF_ERROR(Take(&v, 1, what));
  return v;
}

Result<bool> StateReader::Bool(const char* what) {
  ASSIGN_OR_RETURN(uint8_t v, U8(what));
  if (v > 1) return Error(std::string(what) + ": boolean holds " + std::to_string(v));
  return v == 1;
}

Result<uint16_t> StateReader::U16(const char* what) {
  uint16_t v;
  RETURN_IF_ERROR(Take(&v, sizeof v, what));
  return v;
}

Result<uint32_t> StateReader::U32(const char* what) {
  uint32_t v;
  RETURN_IF_ERROR(Take(&v, sizeof v, what));
  return v;
}

Result<uint64_t> StateReader::U64(const char* what) {
  uint64_t v;
  RETURN_IF_ERROR(Take(&v, sizeof v, what));
  return v;
}

Result<std::vector<uint8_t>> StateReader::Bytes(const char* what, uint64_t max_len) {
  ASSIGN_OR_RETURN(uint64_t len, U64(what));
  if (len > max_len) {
    return Error(std::string(what) + ": length " + std::to_string(len) + " exceeds " +
                 std::to_string(max_len));
  }
  if (len > remaining()) {
    return Error(std::string(what) + ": the state ends early (truncated: length " +
                 std::to_string(len) + ", " + std::to_string(remaining()) + " bytes left)");
  }
  std::vector<uint8_t> out(len);
  RETURN_IF_ERROR(Take(out.data(), len, what));
  return out;
}

Result<std::string> StateReader::String(const char* what, uint64_t max_len) {
  ASSIGN_OR_RETURN(auto bytes, Bytes(what, max_len));
  return std::string(bytes.begin(), bytes.end());
}

Result<uint64_t> StateReader::Count(const char* what, uint64_t max, uint64_t min_item_bytes) {
  ASSIGN_OR_RETURN(uint64_t n, U64(what));
  if (n > max) {
    return Error(std::string(what) + ": count " + std::to_string(n) + " exceeds " + std::to_string(max));
  }
  if (min_item_bytes && n > remaining() / min_item_bytes) {
    return Error(std::string(what) + ": count " + std::to_string(n) +
                 " does not fit in the rest of the state (truncated?)");
  }
  return n;
}

Status StateReader::ExpectEnd(const char* what) const {
  if (remaining() != 0) {
    return Error(std::string(what) + ": " + std::to_string(remaining()) + " unexpected trailing bytes");
  }
  return Ok();
}

}  // namespace hearth
