// Turns one HTTP request (method, path, body) into a typed ApiAction, or an error naming what
// is wrong with it. Pure: no I/O, no VM state, so it is unit-tested and fuzzed on its own.
// Phase rules (pre-boot / post-boot) and checks against the file system belong to the VMM's
// controller, not here.
#pragma once

#include <string_view>

#include "api/api_action.h"
#include "base/result.h"

namespace hearth {

// Firecracker's limit on a request body.
inline constexpr size_t kMaxApiBodyBytes = 51200;

Result<ApiAction> ParseApiRequest(std::string_view method, std::string_view path,
                                  std::string_view body);

}  // namespace hearth
