#include <cstdio>

#include "config/resource_json.h"

namespace hearth {
namespace {

using nlohmann::json;

json BucketToJson(const TokenBucketConfig& b) {
  return json{{"size", b.size}, {"one_time_burst", b.one_time_burst}, {"refill_time", b.refill_time_ms}};
}

json RateLimiterToJson(const RateLimiterConfig& r) {
  json j = json::object();
  if (r.bandwidth) j["bandwidth"] = BucketToJson(*r.bandwidth);
  if (r.ops) j["ops"] = BucketToJson(*r.ops);
  return j;
}

std::string MacToString(const std::array<uint8_t, 6>& mac) {
  char text[18];
  std::snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
                mac[5]);
  return text;
}

}  // namespace

json MachineConfigToJson(const MachineConfig& config) {
  return json{{"vcpu_count", config.vcpu_count},
              {"mem_size_mib", config.mem_size_mib},
              {"smt", config.smt},
              {"track_dirty_pages", config.track_dirty_pages},
              {"huge_pages", "None"}};
}

json VmResourcesToJson(const VmResources& r) {
  json j = json::object();
  if (r.boot_source) {
    json boot{{"kernel_image_path", r.boot_source->kernel_image_path}};
    if (r.boot_source->boot_args) boot["boot_args"] = *r.boot_source->boot_args;
    if (r.boot_source->initrd_path) boot["initrd_path"] = *r.boot_source->initrd_path;
    j["boot-source"] = boot;
  }
  j["machine-config"] = MachineConfigToJson(r.machine);
  json drives = json::array();
  for (const auto& d : r.drives) {
    json drive{{"drive_id", d.drive_id},
               {"path_on_host", d.path_on_host},
               {"is_root_device", d.is_root_device},
               {"is_read_only", d.is_read_only},
               {"cache_type", d.cache_type == CacheType::kWriteback ? "Writeback" : "Unsafe"},
               {"io_engine", d.io_engine == IoEngine::kAsync ? "Async" : "Sync"}};
    if (d.partuuid) drive["partuuid"] = *d.partuuid;
    if (d.rate_limiter) drive["rate_limiter"] = RateLimiterToJson(*d.rate_limiter);
    drives.push_back(drive);
  }
  j["drives"] = drives;
  json ifaces = json::array();
  for (const auto& n : r.network_interfaces) {
    json iface{{"iface_id", n.iface_id}, {"host_dev_name", n.host_dev_name}};
    if (n.guest_mac) iface["guest_mac"] = MacToString(*n.guest_mac);
    if (n.rx_rate_limiter) iface["rx_rate_limiter"] = RateLimiterToJson(*n.rx_rate_limiter);
    if (n.tx_rate_limiter) iface["tx_rate_limiter"] = RateLimiterToJson(*n.tx_rate_limiter);
    ifaces.push_back(iface);
  }
  j["network-interfaces"] = ifaces;
  if (r.vsock) {
    json vsock{{"guest_cid", r.vsock->guest_cid}, {"uds_path", r.vsock->uds_path}};
    if (r.vsock->vsock_id) vsock["vsock_id"] = *r.vsock->vsock_id;
    j["vsock"] = vsock;
  }
  if (r.logger) {
    json logger{{"show_level", r.logger->show_level}, {"show_log_origin", r.logger->show_log_origin}};
    if (r.logger->level) logger["level"] = *r.logger->level;
    if (r.logger->log_path) logger["log_path"] = *r.logger->log_path;
    j["logger"] = logger;
  }
  if (r.metrics) j["metrics"] = json{{"metrics_path", r.metrics->metrics_path}};
  return j;
}

}  // namespace hearth
