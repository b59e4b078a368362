#include "tests/jailer/jail_libraries.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <sstream>

#include "tests/support/process.h"

namespace hearth::testing {

bool PutLibrariesInJail(const std::string& binary, const std::string& root) {
  namespace fs = std::filesystem;
  ProcessResult r = RunProcess({"ldd", binary}, std::chrono::seconds(30));
  if (r.exit_code == 1 && r.out.find("not a dynamic executable") != std::string::npos) return true;
  if (!r.ExitedWith(0)) return false;
  static const std::regex path_re(R"((/[^ ]+) \(0x)");
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (!std::regex_search(line, m, path_re)) continue;
    const std::string lib = m[1];
    const std::string target = root + lib;
    std::error_code ec;
    fs::create_directories(fs::path(target).parent_path(), ec);
    if (fs::exists(target, ec)) continue;
    std::string real = fs::canonical(lib, ec).string();
    if (ec) return false;
    if (::link(real.c_str(), target.c_str()) != 0) {
      fs::copy_file(real, target, ec);
      if (ec) return false;
    }
  }
  return true;
}

}  // namespace hearth::testing
