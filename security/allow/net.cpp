// Network backends: libslirp's loop (user networking: it opens host sockets for the guest's
// connections), tap's reader, the stream backend (reconnects). No files but resolv.conf.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "security/allow/allow_list.h"
#include "security/allow/kvm_ioctls.h"

namespace security {

void allow_slirp_sockets(AllowList& list) {
  // slirp's sockets for the guest's own connections; the stream backend reconnects. Internet and
  // local sockets only (no netlink, no packet sockets, no raw sockets beyond ICMP datagrams).
  for (int family : {AF_INET, AF_INET6, AF_UNIX})
    list.allow_if("socket", {SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family))},
                  "sockets for the guest's connections (slirp) and stream reconnects");
  list.allow("connect", "outbound guest connections, stream reconnects");
  list.allow("bind", "slirp's UDP sockets");
  list.allow("listen", "slirp's guest-side listeners");
  list.allow("accept", "host-forwarded connections (hostfwd)");
  list.allow("accept4", "host-forwarded connections, stream server");
  list.allow("recvfrom", "UDP and TCP data for the guest");
  list.allow("sendto", "UDP and TCP data from the guest");
  list.allow("recvmsg", "datagrams with ancillary data");
  list.allow("sendmsg", "stream frames");
  list.allow("setsockopt", "socket options slirp sets (non-blocking, keepalive, reuseaddr)");
  list.allow("getsockopt", "SO_ERROR after a non-blocking connect");
  list.allow("getsockname", "slirp's socket bookkeeping");
  list.allow("getpeername", "slirp's socket bookkeeping");
  list.allow("shutdown", "half-closing guest TCP connections");
  list.allow("fcntl", "non-blocking sockets (F_GETFL/F_SETFL)");
  list.allow_ioctls({FIONREAD, FIONBIO}, "slirp: bytes waiting on a socket, non-blocking mode");
}

void allow_net(AllowList& list, const PolicyContext&) {
  allow_kvm_interrupts(list);  // a received frame raises virtio-net's interrupt
  list.allow("read", "tap frames, eventfds");
  list.allow("readv", "tap frames into guest buffers");
  list.allow("writev", "frames out");
  list.allow("poll", "the backend loops");
  list.allow("ppoll", "poll on glibc's ppoll path");
  allow_slirp_sockets(list);
  list.allow_if("openat", {SCMP_A2(SCMP_CMP_MASKED_EQ, O_WRONLY | O_RDWR | O_CREAT | O_TRUNC, 0)},
                "slirp rereads /etc/resolv.conf for its DNS proxy (read-only)");
  list.allow("fstat", "resolv.conf changes");
  list.allow("newfstatat", "resolv.conf changes (stat)");
  list.allow("stat", "resolv.conf changes");
}

}  // namespace security
