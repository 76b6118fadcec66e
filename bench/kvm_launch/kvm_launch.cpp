// Launch latency and VMM memory of `vmlaunch up` vs `qemu-system-x86_64 -M microvm -accel kvm` on the
// same freestanding guest (guests/x86/hello.elf: prints a banner, echoes one line, exits through
// port 0x501). Per run and VMM: exec -> first guest serial byte on stdout, exec -> process exit, and
// peak RSS (wait4's ru_maxrss). Guest RAM is 32 MiB on both sides and backed lazily, so peak RSS
// minus the guest pages actually touched (a few hundred KiB for this guest) is the VMM's overhead;
// we report peak RSS itself as its upper bound. Median of N runs, interleaved so machine load hits
// both alike.
//   bazel run //bench/kvm_launch -- [runs]
// With --linux KERNEL INITRD (guests/x86_64/build's Debian cloud kernel and initramfs) both VMMs boot
// that Linux on microvm (256 MiB, 1 vCPU, `quiet`) to the init's shell marker ("vmlaunch-guest:
// userspace up", exec -> marker) and its poweroff (exec -> exit).
//   kvm_launch [runs] [--linux KERNEL INITRD]
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

struct Sample {
  double first_byte_ms = -1;
  double marker_ms = -1;  // exec -> `marker` in the output (when one is given)
  double exit_ms = -1;
  long peak_rss_kib = 0;
  int status = -1;
};

Sample run_once(const std::vector<std::string>& argv, const std::string& marker = "") {
  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0) std::abort();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  int devnull = open("/dev/null", O_WRONLY);
  posix_spawn_file_actions_adddup2(&actions, devnull, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  Sample sample;
  auto start = Clock::now();
  pid_t pid;
  if (posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ) != 0) {
    std::fprintf(stderr, "cannot run %s\n", args[0]);
    std::exit(1);
  }
  close(in[0]);
  close(out[1]);
  close(devnull);
  (void)!write(in[1], "x\n", 2);  // the guest echoes one line, then exits
  close(in[1]);
  char buffer[4096];
  std::string tail;  // enough of the output to find a marker split across reads
  for (;;) {
    ssize_t n = read(out[0], buffer, sizeof buffer);
    if (n <= 0) break;
    if (sample.first_byte_ms < 0)
      sample.first_byte_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (!marker.empty() && sample.marker_ms < 0) {
      tail.append(buffer, static_cast<size_t>(n));
      if (tail.find(marker) != std::string::npos)
        sample.marker_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
      else if (tail.size() > marker.size())
        tail.erase(0, tail.size() - marker.size());
    }
  }
  close(out[0]);
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  sample.exit_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  sample.peak_rss_kib = usage.ru_maxrss;
  sample.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  posix_spawn_file_actions_destroy(&actions);
  return sample;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// One VMM's medians: exec -> its first mark (serial byte or shell marker), exec -> exit, peak RSS.
struct Series {
  std::vector<double> start_ms, exit_ms, rss_mib;
  void add(double start, const Sample& sample) {
    start_ms.push_back(start);
    exit_ms.push_back(sample.exit_ms);
    rss_mib.push_back(sample.peak_rss_kib / 1024.0);
  }
};

// The markdown table both modes print: a row per VMM and the ratio row (qemu / vmlaunch). `digits`
// is the precision of the times; `extra_row` (may be empty) goes before the ratio.
void print_table(const char* start_column, int digits, const Series& ours, const Series& peer,
                 const std::string& extra_row) {
  std::printf("| VMM | exec -> %s (ms) | exec -> exit (ms) | peak RSS (MiB) |\n|---|---|---|---|\n",
              start_column);
  std::printf("| vmlaunch up (kvm, microvm) | %.*f | %.*f | %.1f |\n", digits, median(ours.start_ms), digits,
              median(ours.exit_ms), median(ours.rss_mib));
  std::printf("| qemu-system-x86_64 -M microvm -accel kvm | %.*f | %.*f | %.1f |\n", digits,
              median(peer.start_ms), digits, median(peer.exit_ms), median(peer.rss_mib));
  std::printf("%s", extra_row.c_str());
  std::printf("| ratio qemu / vmlaunch | %.2fx | %.2fx | %.1fx |\n",
              median(peer.start_ms) / median(ours.start_ms), median(peer.exit_ms) / median(ours.exit_ms),
              median(peer.rss_mib) / median(ours.rss_mib));
}

std::string runfile(const char* path) {
  const char* dir = std::getenv("RUNFILES_DIR");
  std::string base = dir ? std::string(dir) + "/vmlaunch/" : std::string();
  return base + path;
}

}  // namespace

// Debian's kernel on microvm under both VMMs: exec -> init's shell marker, exec -> poweroff.
int linux_boots(int runs, const std::string& vmlaunch, const char* qemu, const std::string& kernel,
                const std::string& initrd) {
  const std::string marker = "vmlaunch-guest: userspace up";
  const std::string cmdline = "console=ttyS0 quiet reboot=t panic=-1 vml.cmd=true";
  std::string config = "/tmp/kvm_launch_linux.yaml";
  std::ofstream(config) << "name: bench-linux\nmachine: {arch: x86_64, type: microvm, memory: 256MiB}\n"
                           "cpu: {model: host, count: 1}\naccel: [kvm]\n"
                           "boot: {kernel: \""
                        << kernel << "\", initrd: \"" << initrd << "\", cmdline: \"" << cmdline
                        << "\"}\n"
                           "backends: {chardev: {con0: {driver: stdio}}}\n"
                           "devices: [{driver: ns16550, id: serial0, chardev: con0}]\n";
  std::vector<std::string> ours = {vmlaunch, "up", config};
  // QEMU's microvm with its defaults (ACPI on: Linux powers off through its GED), as the issue measured.
  std::vector<std::string> peer = {
      qemu,        "-M",      "microvm",     "-accel",          "kvm",      "-cpu",    "host",
      "-m",        "256M",    "-nodefaults", "-no-user-config", "-display", "none",    "-serial",
      "stdio",     "-kernel", kernel,        "-initrd",         initrd,     "-append", cmdline,
      "-no-reboot"};
  Series our, their;
  for (int i = 0; i < runs; ++i) {
    Sample a = run_once(ours, marker), b = run_once(peer, marker);
    if (a.status != 0 || a.marker_ms < 0) {
      std::fprintf(stderr, "vmlaunch Linux boot failed (status %d, marker %s)\n", a.status,
                   a.marker_ms < 0 ? "missing" : "seen");
      return 1;
    }
    if (b.status != 0 || b.marker_ms < 0) {
      std::fprintf(stderr, "qemu Linux boot failed (status %d, marker %s)\n", b.status,
                   b.marker_ms < 0 ? "missing" : "seen");
      return 1;
    }
    our.add(a.marker_ms, a);
    their.add(b.marker_ms, b);
  }
  std::printf("median of %d runs, Debian cloud kernel + initramfs, microvm, 256 MiB, 1 vCPU, quiet\n", runs);
  print_table("shell marker", 0, our, their, "");
  return 0;
}

int main(int argc, char** argv) {
  // A VMM that exits before reading its stdin (the `version` baseline does) must not kill us.
  std::signal(SIGPIPE, SIG_IGN);
  int runs = argc > 1 ? std::atoi(argv[1]) : 7;
  if (runs < 1) runs = 1;
  std::string linux_kernel, linux_initrd;
  for (int i = 1; i + 2 < argc; ++i)
    if (std::string(argv[i]) == "--linux") linux_kernel = argv[i + 1], linux_initrd = argv[i + 2];
  std::string vmlaunch = runfile("launcher/vmlaunch"), guest = runfile("guests/x86/hello.elf");
  if (access(vmlaunch.c_str(), X_OK) != 0) {  // bazel run: cwd is the runfiles tree
    vmlaunch = "launcher/vmlaunch";
    guest = "guests/x86/hello.elf";
  }
  char cwd[4096];
  if (guest[0] != '/' && getcwd(cwd, sizeof cwd)) guest = std::string(cwd) + "/" + guest;
  const char* qemu = "/usr/bin/qemu-system-x86_64";
  if (access(qemu, X_OK) != 0) {
    std::fprintf(stderr, "%s is missing: apt-get install qemu-system-x86\n", qemu);
    return 1;
  }
  if (!linux_kernel.empty()) return linux_boots(runs, vmlaunch, qemu, linux_kernel, linux_initrd);
  std::string config = "/tmp/kvm_launch_bench.yaml";
  std::ofstream(config) << "name: bench\nmachine: {arch: x86_64, type: microvm, memory: 32MiB}\n"
                           "cpu: {model: host, count: 1}\naccel: [kvm]\n"
                           "boot: {kernel: \""
                        << guest
                        << "\", cmdline: \"exit=0\"}\n"
                           "backends: {chardev: {con0: {driver: stdio}}}\n"
                           "devices: [{driver: ns16550, id: serial0, chardev: con0}]\n";
  std::vector<std::string> ours = {vmlaunch, "up", config};
  // -cpu host minus ARCH_CAPABILITIES: this host's KVM (PVM) refuses that MSR and QEMU aborts on it.
  std::vector<std::string> peer = {qemu,
                                   "-M",
                                   "microvm",
                                   "-accel",
                                   "kvm",
                                   "-cpu",
                                   "host,-arch-capabilities",
                                   "-m",
                                   "32M",
                                   "-nodefaults",
                                   "-no-user-config",
                                   "-display",
                                   "none",
                                   "-serial",
                                   "stdio",
                                   "-kernel",
                                   guest,
                                   "-append",
                                   "exit=0",
                                   "-device",
                                   "isa-debug-exit,iobase=0x501,iosize=2"};
  Series our, their;
  std::vector<double> base_exit, base_rss;
  for (int i = 0; i < runs; ++i) {
    // Baseline: the same binary doing nothing (`vmlaunch version`): process start and shared libraries.
    Sample base = run_once({vmlaunch, "version"});
    base_exit.push_back(base.exit_ms);
    base_rss.push_back(base.peak_rss_kib / 1024.0);
    Sample a = run_once(ours), b = run_once(peer);
    if (a.status != 0 || a.first_byte_ms < 0) {
      std::fprintf(stderr, "vmlaunch run failed (status %d)\n", a.status);
      return 1;
    }
    if (b.status != 1 || b.first_byte_ms < 0) {  // isa-debug-exit: (0 << 1) | 1
      std::fprintf(stderr, "qemu run failed (status %d)\n", b.status);
      return 1;
    }
    our.add(a.first_byte_ms, a);
    their.add(b.first_byte_ms, b);
  }
  std::printf("median of %d runs, guest guests/x86/hello.elf, 32 MiB, 1 vCPU\n", runs);
  char baseline[160];
  std::snprintf(baseline, sizeof baseline, "| (baseline: vmlaunch version, no VM) | | %.1f | %.1f |\n",
                median(base_exit), median(base_rss));
  print_table("first serial byte", 1, our, their, baseline);
  return 0;
}
