// Parsers for one API resource each, from its JSON body (Firecracker's schema): shared by the
// config file and the REST API so that both accept and refuse exactly the same things. `where`
// prefixes every error message (a config-file key or a request path).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "config/vm_resources.h"

namespace hearth {

Result<TokenBucketConfig> ParseTokenBucket(const nlohmann::json& j, const std::string& where);
Result<RateLimiterConfig> ParseRateLimiterJson(const nlohmann::json& j, const std::string& where);
Result<BootSourceConfig> ParseBootSource(const nlohmann::json& j);
Result<MachineConfig> ParseMachineConfig(const nlohmann::json& j);
Result<LoggerConfig> ParseLogger(const nlohmann::json& j);
Result<DriveConfig> ParseDrive(const nlohmann::json& j, const std::string& where);
Result<NetworkInterfaceConfig> ParseNetworkInterface(const nlohmann::json& j, const std::string& where);
Result<VsockConfig> ParseVsock(const nlohmann::json& j);
Result<MetricsConfig> ParseMetrics(const nlohmann::json& j);

}  // namespace hearth

namespace hearth {

// The other direction, for GET /machine-config and GET /vm/config: Firecracker's shapes, which
// the parsers above accept back unchanged.
nlohmann::json MachineConfigToJson(const MachineConfig& config);
nlohmann::json VmResourcesToJson(const VmResources& resources);

}  // namespace hearth
