#include "api/request_parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "test_util.h"

namespace hearth {
namespace {

template <typename T>
T As(const Result<ApiAction>& parsed) {
  if (!parsed.ok()) {
    ADD_FAILURE() << parsed.error().message();
    return T{};
  }
  if (!std::holds_alternative<T>(*parsed)) {
    ADD_FAILURE() << "got " << ActionName(*parsed);
    return T{};
  }
  return std::get<T>(*parsed);
}

TEST(ApiRequestParser, Gets) {
  EXPECT_STREQ(ActionName(*ParseApiRequest("GET", "/", "")), "get_instance_info");
  EXPECT_STREQ(ActionName(*ParseApiRequest("GET", "/version", "")), "get_version");
  EXPECT_STREQ(ActionName(*ParseApiRequest("GET", "/machine-config", "")), "get_machine_config");
  EXPECT_STREQ(ActionName(*ParseApiRequest("GET", "/vm/config", "")), "get_vm_config");
}

TEST(ApiRequestParser, GetWithBodyRefused) {
  EXPECT_ERROR_CONTAINS(ParseApiRequest("GET", "/", "{}"), "GET request cannot have a body.");
}

TEST(ApiRequestParser, UnknownPathsAndMethods) {
  EXPECT_ERROR_CONTAINS(ParseApiRequest("GET", "/nope", ""), "Invalid request method and/or path: GET /nope");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("POST", "/actions", "{}"), "Invalid request method and/or path: POST /actions");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("DELETE", "/drives/a", ""), "Invalid request method and/or path");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PATCH", "/boot-source", "{}"), "Invalid request method and/or path");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("GET", "/drives/a", ""), "Invalid request method and/or path");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/drives/", "{}"), "Invalid request method and/or path");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/drives/a/b", "{}"), "Invalid request method and/or path");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("put", "/actions", "{}"), "Invalid request method and/or path");
}

TEST(ApiRequestParser, UnsupportedFeaturesNamed) {
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/balloon", "{}"), "balloon device is not supported by Hearth");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("GET", "/balloon/statistics", ""), "not supported by Hearth");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/mmds", "{}"), "MMDS");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/mmds/config", "{}"), "MMDS");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/entropy", "{}"), "entropy");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/cpu-config", "{}"), "CPU templates");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/pmem/p0", "{}"), "pmem");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/hotplug/memory", "{}"), "hot-plug");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/serial", "{}"), "serial");
  // A prefix alone is not a match.
  EXPECT_ERROR_CONTAINS(ParseApiRequest("GET", "/mmdsx", ""), "Invalid request method and/or path");
}

TEST(ApiRequestParser, BodyProblems) {
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/actions", ""), "Empty PUT request.");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PATCH", "/vm", ""), "Empty PATCH request.");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/actions", "{\"action_type\":"), "malformed JSON body");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/actions", "[1,2]"), "must be a JSON object, got array");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/actions", "\"InstanceStart\""), "must be a JSON object");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/actions", std::string(kMaxApiBodyBytes + 1, ' ')),
                        "larger than the limit of 51200");
}

TEST(ApiRequestParser, Actions) {
  EXPECT_EQ(As<PutAction>(ParseApiRequest("PUT", "/actions", R"({"action_type":"InstanceStart"})")).type,
            InstanceActionType::kInstanceStart);
  EXPECT_EQ(As<PutAction>(ParseApiRequest("PUT", "/actions", R"({"action_type":"SendCtrlAltDel"})")).type,
            InstanceActionType::kSendCtrlAltDel);
  EXPECT_EQ(As<PutAction>(ParseApiRequest("PUT", "/actions", R"({"action_type":"FlushMetrics"})")).type,
            InstanceActionType::kFlushMetrics);
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/actions", R"({"action_type":"Reboot"})"),
                        "actions.action_type: 'Reboot' is not");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/actions", R"({"action_type":1})"), "expected a string, got number");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/actions", R"({})"), "actions.action_type: missing");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/actions", R"({"action_type":"InstanceStart","x":1})"),
                        "unknown field 'x'");
}

TEST(ApiRequestParser, BootSourceAndMachineConfig) {
  auto boot = As<PutBootSource>(
      ParseApiRequest("PUT", "/boot-source", R"({"kernel_image_path":"/k","boot_args":"console=ttyS0"})"));
  EXPECT_EQ(boot.config.kernel_image_path, "/k");
  EXPECT_EQ(boot.config.boot_args, "console=ttyS0");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/boot-source", R"({"boot_args":"x"})"), "kernel_image_path: missing");
  auto mc = As<PutMachineConfig>(
      ParseApiRequest("PUT", "/machine-config", R"({"vcpu_count":2,"mem_size_mib":256,"smt":false})"));
  EXPECT_EQ(mc.config.vcpu_count, 2u);
  EXPECT_EQ(mc.config.mem_size_mib, 256u);
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/machine-config", R"({"vcpu_count":0,"mem_size_mib":256})"),
                        "out of range");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/machine-config", R"({"vcpu_count":33,"mem_size_mib":256})"),
                        "more than 32");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/machine-config", R"({"vcpu_count":3,"mem_size_mib":256,"smt":true})"),
                        "must be 1 or even");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/machine-config", R"({"vcpu_count":1,"mem_size_mib":0})"),
                        "mem_size_mib: must be greater than 0");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/machine-config", R"({"vcpu_count":"1","mem_size_mib":1})"),
                        "vcpu_count: expected an integer");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/machine-config", R"({"vcpu_count":1})"), "mem_size_mib: missing");
}

TEST(ApiRequestParser, PatchMachineConfigKeepsOnlyGivenFields) {
  auto patch = As<PatchMachineConfig>(ParseApiRequest("PATCH", "/machine-config", R"({"mem_size_mib":512})"));
  EXPECT_FALSE(patch.vcpu_count.has_value());
  EXPECT_EQ(patch.mem_size_mib, 512u);
  // smt with an odd count depends on the current configuration: the controller decides.
  auto smt = As<PatchMachineConfig>(ParseApiRequest("PATCH", "/machine-config", R"({"smt":true,"vcpu_count":3})"));
  EXPECT_EQ(smt.smt, true);
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PATCH", "/machine-config", R"({"vcpu_count":-1})"), "must not be negative");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PATCH", "/machine-config", R"({"smt":1})"), "smt: expected a boolean");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PATCH", "/machine-config", R"({"cpus":1})"), "unknown field 'cpus'");
}

TEST(ApiRequestParser, Drives) {
  auto put = As<PutDrive>(ParseApiRequest(
      "PUT", "/drives/rootfs",
      R"({"drive_id":"rootfs","path_on_host":"/r.ext4","is_root_device":true,"is_read_only":false})"));
  EXPECT_EQ(put.config.drive_id, "rootfs");
  EXPECT_TRUE(put.config.is_root_device);
  EXPECT_ERROR_CONTAINS(
      ParseApiRequest("PUT", "/drives/a", R"({"drive_id":"b","path_on_host":"/r","is_root_device":true})"),
      "the id from the path ('a') does not match the drive_id from the body ('b')");
  EXPECT_ERROR_CONTAINS(
      ParseApiRequest("PUT", "/drives/a-b", R"({"drive_id":"a-b","path_on_host":"/r","is_root_device":true})"),
      "may contain only letters, digits and '_'");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/drives/a", R"({"drive_id":"a","path_on_host":"/r"})"),
                        "is_root_device: missing");
  EXPECT_ERROR_CONTAINS(
      ParseApiRequest("PUT", "/drives/a",
                      R"({"drive_id":"a","path_on_host":"/r","is_root_device":false,"is_read_only":"yes"})"),
      "is_read_only: expected a boolean");
  auto patch = As<PatchDrive>(ParseApiRequest(
      "PATCH", "/drives/a", R"({"drive_id":"a","rate_limiter":{"ops":{"size":10,"refill_time":100}}})"));
  EXPECT_FALSE(patch.path_on_host.has_value());
  ASSERT_TRUE(patch.rate_limiter.has_value());
  EXPECT_EQ(patch.rate_limiter->ops->size, 10u);
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PATCH", "/drives/a", R"({"drive_id":"a"})"), "nothing to update");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PATCH", "/drives/a", R"({"drive_id":"a","is_read_only":true})"),
                        "unknown field 'is_read_only'");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PATCH", "/drives/a", R"({"drive_id":"a","path_on_host":""})"),
                        "path_on_host: empty");
}

TEST(ApiRequestParser, NetworkInterfaces) {
  auto put = As<PutNetworkInterface>(ParseApiRequest(
      "PUT", "/network-interfaces/eth0",
      R"({"iface_id":"eth0","host_dev_name":"tap0","guest_mac":"06:00:AC:10:00:02"})"));
  EXPECT_EQ(put.config.host_dev_name, "tap0");
  EXPECT_ERROR_CONTAINS(
      ParseApiRequest("PUT", "/network-interfaces/eth0", R"({"iface_id":"eth1","host_dev_name":"tap0"})"),
      "does not match");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/network-interfaces/eth0",
                                        R"({"iface_id":"eth0","host_dev_name":"tap0","guest_mac":"zz"})"),
                        "is not a MAC address");
  auto patch = As<PatchNetworkInterface>(ParseApiRequest(
      "PATCH", "/network-interfaces/eth0",
      R"({"iface_id":"eth0","tx_rate_limiter":{"bandwidth":{"size":1000,"refill_time":10}}})"));
  EXPECT_FALSE(patch.rx_rate_limiter.has_value());
  EXPECT_EQ(patch.tx_rate_limiter->bandwidth->size, 1000u);
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PATCH", "/network-interfaces/eth0",
                                        R"({"iface_id":"eth0","host_dev_name":"tap1"})"),
                        "unknown field 'host_dev_name'");
}

TEST(ApiRequestParser, VsockLoggerMetrics) {
  auto vsock = As<PutVsock>(ParseApiRequest("PUT", "/vsock", R"({"guest_cid":3,"uds_path":"/v.sock"})"));
  EXPECT_EQ(vsock.config.guest_cid, 3u);
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/vsock", R"({"guest_cid":2,"uds_path":"/v.sock"})"), "reserved");
  auto logger = As<PutLogger>(
      ParseApiRequest("PUT", "/logger", R"({"log_path":"/l","level":"debug","show_level":true})"));
  EXPECT_EQ(logger.config.level, "debug");
  EXPECT_TRUE(logger.config.show_level);
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/logger", R"({"level":"Loud"})"), "logger.level: 'Loud'");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/logger", R"({"log_path":""})"), "log_path: empty");
  EXPECT_EQ(As<PutMetrics>(ParseApiRequest("PUT", "/metrics", R"({"metrics_path":"/m"})")).config.metrics_path, "/m");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/metrics", R"({"path":"/m"})"), "unknown field 'path'");
}

TEST(ApiRequestParser, PatchVm) {
  EXPECT_TRUE(As<PatchVmState>(ParseApiRequest("PATCH", "/vm", R"({"state":"Paused"})")).paused);
  EXPECT_FALSE(As<PatchVmState>(ParseApiRequest("PATCH", "/vm", R"({"state":"Resumed"})")).paused);
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PATCH", "/vm", R"({"state":"paused"})"), "is not Paused or Resumed");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PATCH", "/vm", R"({"state":true})"), "expected a string");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/vm", R"({"state":"Paused"})"), "Invalid request method");
}

TEST(ApiRequestParser, Snapshots) {
  auto create = As<CreateSnapshot>(ParseApiRequest(
      "PUT", "/snapshot/create", R"({"snapshot_type":"Diff","snapshot_path":"/s","mem_file_path":"/m"})"));
  EXPECT_EQ(create.type, SnapshotType::kDiff);
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/snapshot/create", R"({"snapshot_path":"/s"})"),
                        "mem_file_path: missing");
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/snapshot/create",
                                        R"({"snapshot_type":"Half","snapshot_path":"/s","mem_file_path":"/m"})"),
                        "is not Full or Diff");
  auto load = As<LoadSnapshot>(ParseApiRequest(
      "PUT", "/snapshot/load",
      R"({"snapshot_path":"/s","mem_backend":{"backend_type":"Uffd","backend_path":"/u.sock"},"resume_vm":true,
          "network_overrides":[{"iface_id":"eth0","host_dev_name":"tap9"}],"vsock_override":{"uds_path":"/v2"}})"));
  EXPECT_EQ(load.backend_type, MemBackendType::kUffd);
  EXPECT_TRUE(load.resume_vm);
  ASSERT_EQ(load.network_overrides.size(), 1u);
  EXPECT_EQ(load.network_overrides[0].host_dev_name, "tap9");
  EXPECT_EQ(load.vsock_uds_path, "/v2");
  auto legacy = As<LoadSnapshot>(
      ParseApiRequest("PUT", "/snapshot/load", R"({"snapshot_path":"/s","mem_file_path":"/m","enable_diff_snapshots":true})"));
  EXPECT_EQ(legacy.backend_type, MemBackendType::kFile);
  EXPECT_EQ(legacy.backend_path, "/m");
  EXPECT_TRUE(legacy.track_dirty_pages);
  EXPECT_ERROR_CONTAINS(ParseApiRequest("PUT", "/snapshot/load", R"({"snapshot_path":"/s"})"),
                        "exactly one of mem_file_path and mem_backend");
  EXPECT_ERROR_CONTAINS(
      ParseApiRequest("PUT", "/snapshot/load",
                      R"({"snapshot_path":"/s","mem_file_path":"/m","mem_backend":{"backend_type":"File","backend_path":"/m"}})"),
      "exactly one of");
  EXPECT_ERROR_CONTAINS(
      ParseApiRequest("PUT", "/snapshot/load",
                      R"({"snapshot_path":"/s","mem_backend":{"backend_type":"Disk","backend_path":"/m"}})"),
      "is not File or Uffd");
  EXPECT_ERROR_CONTAINS(
      ParseApiRequest("PUT", "/snapshot/load", R"({"snapshot_path":"/s","mem_file_path":"/m","huge_pages":"2M"})"),
      "huge_pages: '2M' is not supported");
}

TEST(ApiRequestParser, FaultBodyIsFirecrackersShape) {
  ApiResponse r = ApiResponse::Fault("bad \"thing\"\n");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, R"({"fault_message":"bad \"thing\"\n"})");
}

}  // namespace
}  // namespace hearth
