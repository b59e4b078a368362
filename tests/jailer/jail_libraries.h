// A dynamically linked VMM needs its loader and libraries inside the jail: this puts what
// `ldd` lists for `binary` under `root` at the same paths (hard links where the file system
// allows, copies otherwise). Returns false when ldd fails.
#pragma once

#include <string>

namespace hearth::testing {

bool PutLibrariesInJail(const std::string& binary, const std::string& root);

}  // namespace hearth::testing
