// CPUID as the config shaped it: prints the feature bits the tests edit and the topology leaves,
// and exits 0 when they match want_cx16=N want_x2apic=N want_threads=N (command line).
#include "lib.h"

int guest_main(const struct hvm_start_info* info) {
  uint32_t a, b, c, d;
  cpuid(1, 0, &a, &b, &c, &d);
  uint32_t cx16 = (c >> 13) & 1, x2apic = (c >> 21) & 1, apic_id = b >> 24, logical = (b >> 16) & 0xff;
  cpuid(0xb, 0, &a, &b, &c, &d);
  uint32_t smt_threads = b & 0xffff;
  cpuid(0xb, 1, &a, &b, &c, &d);
  uint32_t package_threads = b & 0xffff;
  puts_serial("cpuid: cx16=");
  put_dec(cx16);
  puts_serial(" x2apic=");
  put_dec(x2apic);
  puts_serial(" apic_id=");
  put_dec(apic_id);
  puts_serial(" logical=");
  put_dec(logical);
  puts_serial(" smt=");
  put_dec(smt_threads);
  puts_serial(" package=");
  put_dec(package_threads);
  puts_serial("\n");
  int ok = cx16 == cmdline_number(info, "want_cx16", cx16) && x2apic == cmdline_number(info, "want_x2apic", x2apic) &&
           smt_threads == cmdline_number(info, "want_smt", smt_threads) &&
           package_threads == cmdline_number(info, "want_package", package_threads);
  puts_serial(ok ? "cpuid: as configured\n" : "cpuid: MISMATCH\n");
  return ok ? 0 : 1;
}
