#include "tests/linux/linux_guest.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/hearth_runner.h"

namespace hearth::testing {

std::string GuestDir() {
  const char* env = std::getenv("HEARTH_GUEST_DIR");
  if (env && *env) return env;
  return HEARTH_GUEST_DIR_DEFAULT;
}

std::optional<std::string> GuestArtifact(std::string_view name) {
  std::string path = GuestDir() + "/" + std::string(name);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    ADD_FAILURE() << "guest artifact " << path
                  << " is missing: run resources/build-guest.sh (or set "
                     "HEARTH_GUEST_DIR to a directory it produced)";
    return std::nullopt;
  }
  return path;
}

const std::string& HostKind() {
  static const std::string kind = [] {
    ProcessResult r = RunProcess({HearthBinary(), "--print-host-kind"},
                                 std::chrono::seconds(30));
    std::string k = r.out;
    while (!k.empty() && (k.back() == '\n' || k.back() == ' ')) k.pop_back();
    if (!r.ExitedWith(0) || (k != "pvm" && k != "hardware"))
      return std::string();
    return k;
  }();
  if (kind.empty()) ADD_FAILURE() << "hearth --print-host-kind failed";
  return kind;
}

void RecordHostKind() {
  const std::string& kind = HostKind();
  ::testing::Test::RecordProperty("host_kind", kind);
  std::printf("[   host   ] host kind: %s\n", kind.c_str());
}

std::string LinuxConfig(VmConfigJson config,
                        const std::vector<DriveSpec>& drives,
                        const std::vector<NetSpec>& nets) {
  if (!drives.empty()) {
    nlohmann::json array = nlohmann::json::array();
    for (const DriveSpec& d : drives) {
      array.push_back({{"drive_id", d.id},
                       {"path_on_host", d.path},
                       {"is_root_device", d.root},
                       {"is_read_only", d.read_only},
                       {"cache_type", "Unsafe"},
                       {"io_engine", "Sync"}});
    }
    config.SetRaw("", "drives", array.dump());
  }
  if (!nets.empty()) {
    nlohmann::json array = nlohmann::json::array();
    for (const NetSpec& n : nets) {
      array.push_back({{"iface_id", n.iface_id},
                       {"host_dev_name", n.host_dev_name},
                       {"guest_mac", n.guest_mac}});
    }
    config.SetRaw("", "network-interfaces", array.dump());
  }
  return config.Str();
}

ProcessResult BootLinux(const TempDir& dir, const std::string& config_json,
                        const std::string& label,
                        const std::vector<std::string>& extra_args,
                        const std::vector<std::string>& prefix) {
  ProcessResult r = RunHearthWithConfig(dir, config_json, extra_args, {},
                                        prefix, kLinuxRunTimeout);
  std::printf("[   time   ] %s: %.1f s (exit %d)\n", label.c_str(), r.seconds,
              r.exit_code);
  std::fflush(stdout);
  ::testing::Test::RecordProperty(label + "_seconds",
                                  std::to_string(r.seconds));
  return r;
}

std::string LineStartingWith(const ProcessResult& r, std::string_view prefix) {
  for (const std::string& line : SplitLines(r.out)) {
    // The serial console may end lines with "\r".
    std::string l = line;
    while (!l.empty() && l.back() == '\r') l.pop_back();
    if (l.rfind(prefix, 0) == 0) return l;
  }
  ADD_FAILURE() << "no stdout line starts with \"" << prefix << "\"\n"
                << r.Describe();
  return "";
}

std::string Field(std::string_view line, std::string_view key) {
  std::string needle = " " + std::string(key) + "=";
  size_t pos = line.find(needle);
  if (pos == std::string_view::npos) return "";
  pos += needle.size();
  size_t end = line.find(' ', pos);
  return std::string(line.substr(
      pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
}

void FillPattern(uint64_t seed, uint64_t offset, size_t size, char* out) {
  for (size_t i = 0; i + 8 <= size; i += 8) {
    uint64_t v = (offset + i) * kPatternMul + seed;
    for (int b = 0; b < 8; ++b) out[i + b] = static_cast<char>(v >> (8 * b));
  }
}

std::string Pattern(uint64_t seed, size_t size) {
  std::string p(size, '\0');
  FillPattern(seed, 0, size, p.data());
  return p;
}

uint64_t WordSum(std::string_view bytes) {
  uint64_t sum = 0;
  for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
    uint64_t v = 0;
    for (int b = 0; b < 8; ++b)
      v |= uint64_t{static_cast<uint8_t>(bytes[i + b])} << (8 * b);
    sum += v;
  }
  return sum;
}

std::string Hex64(uint64_t v) {
  char text[24];
  std::snprintf(text, sizeof(text), "%016llx",
                static_cast<unsigned long long>(v));
  return text;
}

std::string PatternSumHex(std::string_view bytes) {
  return Hex64(WordSum(bytes));
}

std::string ReadFileBytes(const std::string& path, size_t max) {
  std::ifstream f(path, std::ios::binary);
  std::string data;
  if (max == SIZE_MAX) {
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }
  data.resize(max);
  f.read(data.data(), static_cast<std::streamsize>(max));
  data.resize(static_cast<size_t>(f.gcount()));
  return data;
}

bool CopyFile(const std::string& from, const std::string& to) {
  std::error_code ec;
  std::filesystem::copy_file(
      from, to, std::filesystem::copy_options::overwrite_existing, ec);
  return !ec;
}

}  // namespace hearth::testing
