// The gdb remote stub (its thread declares Role::GdbStub): one TCP or unix client speaking the gdb
// remote protocol; it reads and writes guest state through the machine, never host files.
#include "security/allow/allow_list.h"
#include "security/allow/kvm_ioctls.h"

namespace security {

void allow_gdb_stub(AllowList& list, const PolicyContext&) {
  allow_kvm_pause(list);        // the debugger stops and continues the machine
  allow_kvm_debug(list);        // x86_64 on kvm: breakpoints, single step, virtual addresses
  allow_kvm_state_read(list);   // x86_64 on kvm: registers (the vCPU's whole state, as a snapshot reads it)
  allow_kvm_state_write(list);  // gdb's register writes put that state back
  list.allow("read", "packets from gdb");
  list.allow("poll", "waiting for gdb or a stop");
  list.allow("ppoll", "poll on glibc's ppoll path");
  list.allow("accept4", "the gdb connection");
  list.allow("recvfrom", "packets (recv)");
  list.allow("sendto", "replies (send)");
  list.allow("setsockopt", "TCP_NODELAY on the connection");
  list.allow("pipe2", "a self-pipe wakes the stub");
}

}  // namespace security
