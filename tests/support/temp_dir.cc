#include "tests/support/temp_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

namespace hearth::testing {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "TempDir: %s: %s\n", what.c_str(), std::strerror(errno));
  std::abort();
}

}  // namespace

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(base && *base ? base : "/tmp") + "/hearth-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) Die("mkdtemp " + tmpl);
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Path(std::string_view name) const {
  return path_ + "/" + std::string(name);
}

std::string TempDir::Write(std::string_view name, std::string_view content,
                           mode_t mode) const {
  std::string p = Path(name);
  {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    if (!f) Die("open " + p);
    f.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!f) Die("write " + p);
  }
  if (chmod(p.c_str(), mode) != 0) Die("chmod " + p);
  return p;
}

void TempDir::MakeWorldReadable() const {
  if (chmod(path_.c_str(), 0755) != 0) Die("chmod " + path_);
}

}  // namespace hearth::testing
