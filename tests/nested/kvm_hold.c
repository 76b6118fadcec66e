// kvm-hold: keeps one idle KVM VM (in-kernel irqchip, one never-run vCPU) alive for the nested
// host's whole life, so the number of KVM VMs in its kernel never drops back to zero.
//
// Why: the first KVM VM enables static keys in the host kernel (preempt_notifier_key, from
// kvm_create_vm; apic_sw_disabled, from each in-kernel LAPIC) and the last one to go disables
// them again. Each flip rewrites kernel code on every CPU with text_poke_bp (an int3 at each site,
// IPIs, then the new instruction). Under QEMU 7.2's multi-threaded TCG (Debian 12) the other vCPU
// sometimes keeps executing a stale translation of the int3 after the bytes are long restored: Linux
// backs up over the vanished int3 (kprobe_int3_handler) and retries, forever, inside __schedule
// with that CPU's runqueue lock held; the next CPU to take the lock (a timer's RCU wake-up) spins
// with interrupts off and the whole nested host is dead (tests/nested/README.md: "Bugs it found").
// vmlaunch creates and destroys a VM per run and per guest reboot, so a rebooting guest hit it
// within seconds. With this VM alive those keys never flip, and no kernel code is rewritten.
//
// Setup happens in the foreground (its errors are the caller's); a child keeps the fds and sleeps
// until the nested host powers off.
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int fail(const char* what) {
  fprintf(stderr, "kvm-hold: %s: %s\n", what, strerror(errno));
  return 1;
}

int main(void) {
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) return fail("/dev/kvm");
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) return fail("KVM_CREATE_VM");
  // The in-kernel LAPIC of the vCPU below starts software-disabled and stays so (it never runs).
  if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) return fail("KVM_CREATE_IRQCHIP");
  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) return fail("KVM_CREATE_VCPU");
  pid_t child = fork();
  if (child < 0) return fail("fork");
  if (child > 0) {
    printf("kvm-hold: an idle KVM VM is held by pid %d\n", (int)child);
    return 0;
  }
  setsid();
  signal(SIGHUP, SIG_IGN);
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
  }
  for (;;) pause();
}
