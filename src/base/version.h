// Hearth's version: `hearth --version`, GET /version, GET / and the metrics file.
#pragma once

namespace hearth {

inline constexpr const char* kHearthVersion = "0.1.0";

}  // namespace hearth
