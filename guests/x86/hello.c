// Serial output, input and the exit port: greets, echoes one line typed on COM1, and exits with the
// status given as exit=N on the command line (default 0).
#include "lib.h"

int guest_main(const struct hvm_start_info* info) {
  if (info->magic != 0x336ec578) return 90;
  puts_serial("hello from the x86 test guest\n");
  puts_serial("type a line: ");
  char line[64];
  int n = 0;
  for (;;) {
    int c = getc_serial();
    if (c == '\r' || c == '\n') break;
    if (n < 63) line[n++] = (char)c;
  }
  line[n] = 0;
  puts_serial("\necho: ");
  puts_serial(line);
  puts_serial("\n");
  return (int)cmdline_number(info, "exit", 0);
}
