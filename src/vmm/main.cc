// hearth: the micro-VM monitor's command line, Firecracker-compatible where the flags overlap.
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/fd.h"
#include "base/log.h"
#include "base/version.h"
#include "config/vm_resources.h"
#include "seccomp/seccomp.h"
#include "vmm/console.h"
#include "vmm/host_kind.h"
#include "vmm/microvm.h"
#include "vmm/snapshot_cli.h"
#include "vmm/vmm_controller.h"
#include "api/action_channel.h"
#include "api/api_server.h"

namespace hearth {
namespace {

// Exit statuses (Firecracker's where they overlap: 153 bad configuration, 154 bad arguments).
constexpr int kExitOk = 0;
constexpr int kExitVmmError = 1;
constexpr int kExitTripleFault = 2;
constexpr int kExitGuestPanic = 3;
constexpr int kExitEmulationFailure = 4;
constexpr int kExitBadConfiguration = 153;
constexpr int kExitArgumentParsing = 154;

constexpr const char* kUsage =
    "usage: hearth --api-sock PATH [--config-file FILE] [options]\n"
    "       hearth --no-api --config-file FILE [options]\n"
    "\n"
    "  --api-sock PATH        serve Firecracker's REST API on this UNIX socket\n"
    "  --config-file FILE     VM configuration (Firecracker's JSON shape): boot it at once\n"
    "  --no-api               run without the API socket (requires --config-file)\n"
    "  --metrics-path PATH    write metrics (one JSON object per flush) to this file or FIFO\n"
    "  --describe-snapshot F  check a snapshot state file and print what it holds\n"
    "  --snapshot-version     print the snapshot format version this build reads and writes\n"
    "  --merge-diff-snapshot DIFF --merge-base BASE\n"
    "                         apply a Diff snapshot's memory file onto its base memory file\n"
    "  --id ID                instance id used in logs (default anonymous-instance)\n"
    "  --boot-timer           log the time from start to the guest's boot-complete signal\n"
    "  --level LEVEL          log level: Error, Warning, Info (default), Debug\n"
    "  --log-path PATH        append logs to PATH instead of stderr\n"
    "  --no-seccomp           run without seccomp filters (they are on by default)\n"
    "  --seccomp-filter FILE  install FILE (compiled BPF: sock_filter records) on every thread\n"
    "                         instead of Hearth's own policies\n"
    "  --seccomp-log          debug: log system calls outside the policies instead of killing\n"
    "  --start-time-us US     (set by hearth-jailer) CLOCK_MONOTONIC start time, for --boot-timer\n"
    "  --start-time-cpu-us US (set by hearth-jailer) CPU time used at that start\n"
    "  --host-kind KIND       auto (default), pvm or hardware: which host workarounds apply\n"
    "  --print-host-kind      print the detected host kind and exit\n"
    "  --version              print the version and exit\n"
    "  --help                 this text\n";

struct Args {
  std::optional<std::string> config_file;
  bool no_api = false;
  std::optional<std::string> api_sock;
  std::string id = "anonymous-instance";
  bool boot_timer = false;
  std::string level = "Info";
  std::optional<std::string> log_path;
  std::optional<std::string> metrics_path;
  std::string host_kind = "auto";
  bool print_host_kind = false;
  bool snapshot_version = false;
  std::optional<std::string> describe_snapshot;
  std::optional<std::string> merge_diff;
  std::optional<std::string> merge_base;
  bool help = false;
  bool version = false;
  SeccompOptions seccomp;
  std::optional<std::string> start_time_us;
  std::optional<std::string> start_time_cpu_us;
};

// Seccomp and start-time flags (hearth-jailer passes the start times).
Status ParseSeccompAndStartArgs(Args& args, bool no_seccomp, bool seccomp_log) {
  int chosen = int{no_seccomp} + int{seccomp_log} + int{args.seccomp.filter_file.has_value()};
  if (chosen > 1) return Error("--no-seccomp, --seccomp-filter and --seccomp-log exclude each other");
  if (no_seccomp) args.seccomp.mode = SeccompMode::kOff;
  if (seccomp_log) args.seccomp.mode = SeccompMode::kLog;
  for (auto* value : {&args.start_time_us, &args.start_time_cpu_us}) {
    if (*value && (value->value().empty() ||
                   value->value().find_first_not_of("0123456789") != std::string::npos ||
                   value->value().size() > 19)) {
      return Error("--start-time-us / --start-time-cpu-us: '" + value->value() +
                   "' is not a number of microseconds");
    }
  }
  if (args.start_time_us) {
    SetProcessStart(std::stoull(*args.start_time_us),
                    args.start_time_cpu_us ? std::stoull(*args.start_time_cpu_us) : 0);
  }
  return Ok();
}

Result<Args> ParseArgs(int argc, char** argv) {
  Args args;
  const std::map<std::string, std::string*> valued = {
      {"--config-file", nullptr}, {"--api-sock", nullptr}, {"--id", &args.id},
      {"--level", &args.level},   {"--log-path", nullptr}, {"--host-kind", &args.host_kind},
      {"--metrics-path", nullptr}, {"--describe-snapshot", nullptr}, {"--merge-diff-snapshot", nullptr},
      {"--merge-base", nullptr},
      {"--metrics-path", nullptr}, {"--seccomp-filter", nullptr}, {"--start-time-us", nullptr},
      {"--start-time-cpu-us", nullptr},
  };
  const std::map<std::string, bool*> flags = {
      {"--no-api", &args.no_api},       {"--boot-timer", &args.boot_timer},
      {"--help", &args.help},           {"--version", &args.version},
      {"--print-host-kind", &args.print_host_kind}, {"--snapshot-version", &args.snapshot_version},
  };
  bool no_seccomp = false;
  bool seccomp_log = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::optional<std::string> inline_value;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      inline_value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    if (arg == "--no-seccomp" || arg == "--seccomp-log") {
      if (inline_value) return Error(arg + " takes no value");
      (arg == "--no-seccomp" ? no_seccomp : seccomp_log) = true;
      continue;
    }
    if (auto f = flags.find(arg); f != flags.end()) {
      if (inline_value) return Error(arg + " takes no value");
      *f->second = true;
      continue;
    }
    if (!valued.contains(arg)) return Error("unknown argument '" + arg + "'");
    std::string value;
    if (inline_value) {
      value = *inline_value;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return Error(arg + " needs a value");
    }
    if (arg == "--config-file") args.config_file = value;
    else if (arg == "--api-sock") args.api_sock = value;
    else if (arg == "--log-path") args.log_path = value;
    else if (arg == "--metrics-path") args.metrics_path = value;
    else if (arg == "--describe-snapshot") args.describe_snapshot = value;
    else if (arg == "--merge-diff-snapshot") args.merge_diff = value;
    else if (arg == "--merge-base") args.merge_base = value;
    else if (arg == "--seccomp-filter") args.seccomp.filter_file = value;
    else if (arg == "--start-time-us") args.start_time_us = value;
    else if (arg == "--start-time-cpu-us") args.start_time_cpu_us = value;
    else *valued.at(arg) = value;
  }
  RETURN_IF_ERROR(ParseSeccompAndStartArgs(args, no_seccomp, seccomp_log));
  return args;
}

// Written by the signal handler, read by the VMM thread's event loop.
int g_stop_event_fd = -1;
// The signal that asked the VMM to stop, for the exit status (128 + signal).
volatile sig_atomic_t g_stop_signal = SIGTERM;

void OnStopSignal(int signo) {
  uint64_t one = 1;
  g_stop_signal = signo;
  [[maybe_unused]] ssize_t n = ::write(g_stop_event_fd, &one, sizeof(one));
}

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "hearth: error: %s\n", message.c_str());
  return code;
}

int RunMain(int argc, char** argv) {
  RecordProcessStart();
  auto parsed = ParseArgs(argc, argv);
  if (!parsed.ok()) return Fail(kExitArgumentParsing, parsed.error().message() + " (see --help)");
  const Args& args = *parsed;
  if (args.help) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (args.version) {
    std::printf("hearth v%s\n", kHearthVersion);
    return kExitOk;
  }
  auto host_kind = ResolveHostKind(args.host_kind);
  if (!host_kind.ok()) return Fail(kExitArgumentParsing, host_kind.error().message());
  if (args.snapshot_version) return PrintSnapshotVersion(std::cout);
  if (args.describe_snapshot) return DescribeSnapshot(*args.describe_snapshot, std::cout, std::cerr);
  if (args.merge_diff || args.merge_base) {
    if (!args.merge_diff || !args.merge_base) {
      return Fail(kExitArgumentParsing, "--merge-diff-snapshot DIFF and --merge-base BASE go together");
    }
    return MergeDiffSnapshot(*args.merge_diff, *args.merge_base, std::cerr);
  }
  if (args.print_host_kind) {
    std::puts(HostKindName(*host_kind));
    return kExitOk;
  }
  auto level = ParseLogLevel(args.level);
  if (!level.ok()) return Fail(kExitArgumentParsing, "--level: " + level.error().message());
  SetLogLevel(*level);
  SetLogInstanceId(args.id);
  if (args.log_path) {
    if (auto s = SetLogPath(*args.log_path); !s.ok()) {
      return Fail(kExitArgumentParsing, "--log-path: " + s.error().message());
    }
  }
  if (args.no_api && args.api_sock) return Fail(kExitArgumentParsing, "--no-api and --api-sock exclude each other");
  if (args.no_api && !args.config_file) return Fail(kExitArgumentParsing, "--no-api needs --config-file");
  if (!args.no_api && !args.api_sock) {
    return Fail(kExitArgumentParsing, "give --api-sock PATH, or --no-api with --config-file FILE");
  }

  LOG_DEBUG("start-up: arguments parsed at " << MonotonicMicros() - ProcessStartMicros() << " us");
  std::optional<VmResources> resources;
  if (args.config_file) {
    auto loaded = LoadVmConfigFile(*args.config_file);
    if (!loaded.ok()) return Fail(kExitBadConfiguration, loaded.error().message());
    resources = std::move(loaded).value();
    if (args.metrics_path && resources->metrics) {
      return Fail(kExitBadConfiguration, "metrics: given both in the config file and with --metrics-path");
    }
  }

  // A broken stdout pipe must not kill the VMM; signals ask the VMM thread to stop cleanly.
  ::signal(SIGPIPE, SIG_IGN);
  Vcpu::InstallKickHandler();
  auto stop_event = EventFd::Create();
  if (!stop_event.ok()) return Fail(kExitVmmError, stop_event.error().message());
  g_stop_event_fd = stop_event->get();
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaction(sig, &sa, nullptr);

  SeccompOptions seccomp_options = args.seccomp;
#ifdef HEARTH_SANITIZER_BUILD
  // The sanitizer runtimes make calls no policy lists (LeakSanitizer stops the world with
  // ptrace and reads /proc at exit): a sanitizer build of hearth logs forbidden calls instead
  // of dying on them, like Firecracker's debug builds. A --seccomp-filter file still applies.
  if (seccomp_options.mode == SeccompMode::kKill && !seccomp_options.filter_file) {
    seccomp_options.mode = SeccompMode::kLog;
    LOG_INFO("sanitizer build: seccomp policies in log mode (README.md, Sanitizers)");
  }
#endif
  // Compiled once here; each thread installs its own before it handles a guest or a client.
  auto seccomp = SeccompFilters::Build(seccomp_options);
  if (!seccomp.ok()) return Fail(kExitArgumentParsing, seccomp.error().message());
  const std::shared_ptr<const SeccompFilters> filters = *seccomp;

  auto loop = EventLoop::Create();
  if (!loop.ok()) return Fail(kExitVmmError, loop.error().message());
  ApiMetrics api_metrics;
  ControllerOptions options;
  options.instance_id = args.id;
  options.vm_options.host_kind = *host_kind;
  options.vm_options.boot_timer = args.boot_timer;
  if (filters->enabled()) {
    options.vm_options.on_vcpu_thread_start = [filters] { return filters->Install(SeccompThreadKind::kVcpu); };
    options.vm_options.on_event_loop_start = [filters] { return filters->Install(SeccompThreadKind::kVmm); };
  }
  options.api_metrics = &api_metrics;
  bool vm_stopped = false;
  VmmController controller(options, *loop, [&] {
    vm_stopped = true;
    loop->Stop();
  });
  bool signalled = false;
  if (auto s = loop->Add(stop_event->get(), EPOLLIN, [&](uint32_t) {
        (void)stop_event->Consume();
        signalled = true;
        if (controller.started()) {
          controller.RequestStop("the VMM was asked to stop by a signal");
        } else {
          loop->Stop();
        }
      });
      !s.ok()) {
    return Fail(kExitVmmError, s.error().message());
  }
  if (args.metrics_path) {
    VmResources metrics_only;
    metrics_only.metrics = MetricsConfig{*args.metrics_path};
    if (auto s = controller.ConfigureFromFile(metrics_only); !s.ok()) {
      return Fail(kExitArgumentParsing, "--metrics-path: " + s.error().message());
    }
  }

  std::unique_ptr<ActionChannel> channel;
  std::unique_ptr<ApiServer> server;
  if (args.api_sock) {
    auto created = ActionChannel::Create();
    if (!created.ok()) return Fail(kExitVmmError, created.error().message());
    channel = std::move(created).value();
    ActionChannel* raw_channel = channel.get();
    if (auto s = loop->Add(channel->fd(), EPOLLIN, [&controller, raw_channel](uint32_t) {
          raw_channel->Serve([&controller](const ApiAction& action) { return controller.Handle(action); });
        });
        !s.ok()) {
      return Fail(kExitVmmError, s.error().message());
    }
    std::function<void()> api_thread_start;
    if (filters->enabled()) {
      api_thread_start = [filters] {
        // An API thread without its filter must not serve: end the VMM.
        if (auto s = filters->Install(SeccompThreadKind::kApi); !s.ok()) {
          std::fprintf(stderr, "hearth: error: %s\n", s.error().message().c_str());
          std::_Exit(kExitVmmError);
        }
      };
    }
    auto made = ApiServer::Create({*args.api_sock, channel.get(), &api_metrics, api_thread_start});
    if (!made.ok()) return Fail(kExitVmmError, made.error().message());
    server = std::move(made).value();
    server->Start();
    LOG_INFO("API server listening on " << *args.api_sock);
  }

  RawTerminal raw(STDIN_FILENO);
  if (resources) {
    if (auto s = controller.ConfigureFromFile(*resources); !s.ok()) {
      return Fail(kExitBadConfiguration, s.error().message());
    }
    BuildStage stage = BuildStage::kHost;
    auto started = controller.StartInstance(&stage);
    if (!started.ok()) {
      if (channel) channel->Close("the VMM is shutting down");
      return Fail(stage == BuildStage::kConfiguration ? kExitBadConfiguration : kExitVmmError,
                  started.error().message());
    }
  }

  Status ran = loop->Run();
  if (channel) channel->Close("the VMM is shutting down");
  std::optional<RunOutcome> outcome;
  if (controller.started()) outcome = controller.StopVm();
  if (auto s = controller.FlushMetrics(); !s.ok() && s.error().message().find("not initialized") == std::string::npos) {
    LOG_WARN(s.error().message());
  }
  if (server) server->Stop();
  if (!ran.ok()) return Fail(kExitVmmError, ran.error().message());
  if (!outcome) {
    // Stopped by a signal before any VM ran.
    LOG_INFO("VMM stopped by a signal before the microVM started");
    return 128 + g_stop_signal;
  }
  (void)vm_stopped;
  (void)signalled;
  switch (outcome->kind) {
    case ExitKind::kPowerOff:
    case ExitKind::kReset:
      LOG_INFO("VM stopped: " << outcome->message);
      return kExitOk;
    case ExitKind::kTripleFault:
      return Fail(kExitTripleFault, outcome->message);
    case ExitKind::kGuestPanic:
      return Fail(kExitGuestPanic, outcome->message);
    case ExitKind::kEmulationFailure:
      return Fail(kExitEmulationFailure, outcome->message);
    case ExitKind::kSignal:
      LOG_WARN(outcome->message);
      return 128 + g_stop_signal;
    case ExitKind::kVmmError:
      return Fail(kExitVmmError, outcome->message);
  }
  return kExitVmmError;
}

}  // namespace
}  // namespace hearth

#ifdef HEARTH_SANITIZER_BUILD
// LeakSanitizer reads /proc to stop the world at exit, and the jailer's chroot has no /proc
// (and the jailer execs hearth with an empty environment, so ASAN_OPTIONS cannot say so): there
// leak checking is off; every other run of the same code keeps it.
extern "C" const char* __asan_default_options() {
  return ::access("/proc/self/status", R_OK) == 0 ? "" : "detect_leaks=0";
}
#endif

int main(int argc, char** argv) { return hearth::RunMain(argc, argv); }
