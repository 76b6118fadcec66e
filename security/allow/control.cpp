// The control socket server: JSON requests from `vmlaunch` clients (status, stop, pause, powerdown,
// queries), events back. Its requests act on the machine through the controller.
#include "security/allow/allow_list.h"
#include "security/allow/kvm_ioctls.h"

namespace security {

void allow_control(AllowList& list, const PolicyContext&) {
  allow_thread_start(list);    // powerdown: the power button's release thread
  allow_kvm_interrupts(list);  // powerdown: the button's interrupt
  allow_kvm_pause(list);       // pause, resume; a stop resumes a paused machine
  list.allow("read", "client requests, the wake-up pipe");
  list.allow("poll", "the server loop");
  list.allow("ppoll", "poll on glibc's ppoll path");
  list.allow("accept4", "new clients");
  list.allow("recvfrom", "client requests (recv)");
  list.allow("sendto", "replies and events (send)");
  list.allow("pipe2", "a self-pipe wakes the server loop");
  list.allow("shutdown", "ending a client connection");
}

}  // namespace security
