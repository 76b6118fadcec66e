// Character backends (stdio, pty, socket, file) and the console socket server: reading host input
// for the guest's serial ports, serving `vmlaunch console` clients.
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

#include "security/allow/allow_list.h"
#include "security/allow/kvm_ioctls.h"

namespace security {

void allow_chardev(AllowList& list, const PolicyContext&) {
  allow_kvm_interrupts(list);  // input raises the UART's or virtio-console's interrupt
  list.allow("read", "terminal and socket input");
  list.allow("poll", "the reader and server loops");
  list.allow("ppoll", "poll on glibc's ppoll path");
  list.allow("accept4", "console clients, socket chardev servers");
  list.allow("recvfrom", "console client input (recv)");
  list.allow("sendto", "console output to the client (send); events");
  list.allow("pipe2", "a self-pipe wakes the server loop");
  for (int family : {AF_UNIX, AF_INET, AF_INET6})
    list.allow_if("socket", {SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family))},
                  "socket chardev clients reconnect");
  list.allow("connect", "socket chardev clients reconnect");
  list.allow("setsockopt", "TCP_NODELAY on reconnected sockets");
  list.allow("copy_file_range", "the console log keeps its previous window as console.log.1");
  list.allow("ftruncate", "the console log rotates in place");
  list.allow("fstat", "the console log's size");
  list.allow("newfstatat", "glibc's fstat");
  list.allow_ioctls({TCGETS, TCSETS, TCSETSW, TCSETSF, TIOCGWINSZ}, "the stdio terminal's raw mode");
}

}  // namespace security
