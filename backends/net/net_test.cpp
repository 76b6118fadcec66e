#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <optional>
#include <thread>

#include "backends/net/slirp.h"
#include "backends/net/slirp_library.h"
#include "backends/net/stream.h"
#include "backends/net/tap.h"
#include "tests/skip.h"

using namespace backends::net;

namespace {

constexpr uint8_t kGuestMac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

// Collects frames like a virtio-net device with plenty of buffers (or none, when `accept` is off).
struct Receiver : backends::NetReceiver {
  std::mutex m;
  std::condition_variable changed;
  std::vector<std::vector<uint8_t>> frames;
  bool accept = true;
  bool receive_frame(std::span<const uint8_t> frame) override {
    std::lock_guard lock(m);
    if (!accept) return false;
    frames.emplace_back(frame.begin(), frame.end());
    changed.notify_all();
    return true;
  }
  // Waits up to 5 s for a frame matching `match`.
  template <typename F>
  std::optional<std::vector<uint8_t>> wait(F match) {
    std::unique_lock lock(m);
    std::optional<std::vector<uint8_t>> found;
    changed.wait_for(lock, std::chrono::seconds(5), [&] {
      for (auto& f : frames)
        if (match(f)) {
          found = f;
          return true;
        }
      return false;
    });
    return found;
  }
};

uint16_t checksum(const uint8_t* data, size_t length, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < length; i += 2) sum += uint32_t(data[i]) << 8 | data[i + 1];
  if (length & 1) sum += uint32_t(data[length - 1]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

void put16(std::vector<uint8_t>& f, size_t at, uint16_t v) {
  f[at] = static_cast<uint8_t>(v >> 8);
  f[at + 1] = static_cast<uint8_t>(v);
}
uint16_t get16(const std::vector<uint8_t>& f, size_t at) {
  return static_cast<uint16_t>(f[at] << 8 | f[at + 1]);
}

std::vector<uint8_t> ethernet(const uint8_t* dst, uint16_t type, size_t payload) {
  std::vector<uint8_t> f(14 + payload, 0);
  std::memcpy(f.data(), dst, 6);
  std::memcpy(f.data() + 6, kGuestMac, 6);
  put16(f, 12, type);
  return f;
}

std::vector<uint8_t> arp_request(const char* target) {
  static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  auto f = ethernet(broadcast, 0x0806, 28);
  uint8_t* a = f.data() + 14;
  a[1] = 1;                      // htype ethernet
  a[2] = 0x08;                   // ptype IPv4
  a[4] = 6, a[5] = 4, a[7] = 1;  // hlen, plen, oper request
  std::memcpy(a + 8, kGuestMac, 6);
  inet_pton(AF_INET, "10.0.2.15", a + 14);
  inet_pton(AF_INET, target, a + 24);
  return f;
}

// IPv4 header at 14 with protocol and addresses; payload follows at 34.
void ipv4(std::vector<uint8_t>& f, uint8_t protocol, const char* src, const char* dst) {
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  put16(f, 16, static_cast<uint16_t>(f.size() - 14));
  ip[8] = 64;
  ip[9] = protocol;
  inet_pton(AF_INET, src, ip + 12);
  inet_pton(AF_INET, dst, ip + 16);
  put16(f, 24, checksum(ip, 20));
}

std::vector<uint8_t> dhcp_discover(const uint8_t* client_mac = kGuestMac) {
  static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  size_t bootp = 240 + 4;
  auto f = ethernet(broadcast, 0x0800, 20 + 8 + bootp);
  ipv4(f, 17, "0.0.0.0", "255.255.255.255");
  put16(f, 34, 68);
  put16(f, 36, 67);
  put16(f, 38, static_cast<uint16_t>(8 + bootp));
  uint8_t* b = f.data() + 42;
  b[0] = 1, b[1] = 1, b[2] = 6;                        // BOOTREQUEST, ethernet, hlen
  b[4] = 0xde, b[5] = 0xad, b[6] = 0xbe, b[7] = 0xef;  // xid
  std::memcpy(b + 28, client_mac, 6);
  b[236] = 99, b[237] = 130, b[238] = 83, b[239] = 99;  // magic cookie
  b[240] = 53, b[241] = 1, b[242] = 1;                  // DHCPDISCOVER
  b[243] = 255;
  return f;
}

std::vector<uint8_t> tcp_syn(const uint8_t* gateway_mac, uint16_t port) {
  auto f = ethernet(gateway_mac, 0x0800, 20 + 20);
  ipv4(f, 6, "10.0.2.15", "10.0.2.2");
  put16(f, 34, 40000);
  put16(f, 36, port);
  f[38] = 0, f[39] = 0, f[40] = 0x10, f[41] = 0;  // seq
  f[46] = 0x50;                                   // data offset 5 words
  f[47] = 0x02;                                   // SYN
  put16(f, 48, 65535);                            // window
  // Pseudo header: src, dst, zero, protocol, TCP length.
  uint32_t sum = 0;
  for (int i = 26; i < 34; i += 2) sum += uint32_t(f[i]) << 8 | f[i + 1];
  sum += 6 + 20;
  put16(f, 50, checksum(f.data() + 34, 20, sum));
  return f;
}

bool is_arp_reply(const std::vector<uint8_t>& f) {
  return f.size() >= 42 && get16(f, 12) == 0x0806 && f[21] == 2;
}

std::unique_ptr<SlirpBackend> slirp(bool restricted, std::vector<HostForward> forwards = {}) {
  SlirpBackend::Options options;
  options.restricted = restricted;
  options.forwards = std::move(forwards);
  auto backend = SlirpBackend::create(options);
  REQUIRE_MESSAGE(backend.ok(), (backend.ok() ? "" : backend.error().message));
  return std::move(backend).value();
}

int listen_loopback(uint16_t& port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  listen(fd, 1);
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  port = ntohs(address.sin_port);
  return fd;
}

bool accepted_within(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, ms) == 1;
}

}  // namespace

TEST_CASE("hostfwd rules parse and errors explain the form") {
  auto rule = parse_hostfwd("tcp:127.0.0.1:2222-:22");
  REQUIRE(rule.ok());
  CHECK_FALSE(rule->udp);
  CHECK(rule->host_addr == "127.0.0.1");
  CHECK(rule->host_port == 2222);
  CHECK(rule->guest_addr.empty());
  CHECK(rule->guest_port == 22);
  auto udp = parse_hostfwd("udp::5353-10.0.2.15:53");
  REQUIRE(udp.ok());
  CHECK(udp->udp);
  CHECK(udp->guest_addr == "10.0.2.15");
  for (const char* bad : {"sctp::1-:2", "tcp:1-2", "tcp::99999-:22", "tcp:localhost:22-:22", "tcp::22:22"}) {
    auto parsed = parse_hostfwd(bad);
    CHECK_MESSAGE(!parsed.ok(), bad);
    if (!parsed.ok()) CHECK(parsed.error().message.find("expected tcp|udp:") != std::string::npos);
  }
}

TEST_CASE("user network answers ARP for the gateway") {
  auto net = slirp(false);
  Receiver receiver;
  net->attach(&receiver);
  net->send_frame(arp_request("10.0.2.2"));
  auto reply = receiver.wait(is_arp_reply);
  REQUIRE(reply.has_value());
  char ip[16];
  inet_ntop(AF_INET, reply->data() + 28, ip, sizeof(ip));
  CHECK(std::string(ip) == "10.0.2.2");
  net->attach(nullptr);
}

TEST_CASE("user network offers 10.0.2.15 by DHCP") {
  auto net = slirp(false);
  Receiver receiver;
  net->attach(&receiver);
  net->send_frame(dhcp_discover());
  auto offer = receiver.wait([](const std::vector<uint8_t>& f) {
    return f.size() > 282 && get16(f, 12) == 0x0800 && f[23] == 17 && get16(f, 34) == 67 && f[42] == 2;
  });
  REQUIRE(offer.has_value());
  char ip[16];
  inet_ntop(AF_INET, offer->data() + 42 + 16, ip, sizeof(ip));  // yiaddr
  CHECK(std::string(ip) == "10.0.2.15");
  net->attach(nullptr);
}

// The address slirp offers the DHCP client `mac`.
std::string dhcp_offer(SlirpBackend& net, const uint8_t* mac) {
  Receiver receiver;
  net.attach(&receiver);
  net.send_frame(dhcp_discover(mac));
  auto offer = receiver.wait([](const std::vector<uint8_t>& f) {
    return f.size() > 282 && get16(f, 12) == 0x0800 && f[23] == 17 && get16(f, 34) == 67 && f[42] == 2;
  });
  net.attach(nullptr);
  if (!offer) return "";
  char ip[16];
  inet_ntop(AF_INET, offer->data() + 42 + 16, ip, sizeof(ip));
  return ip;
}

TEST_CASE("user network state (snapshots): DHCP leases survive a save and load into a new slirp") {
  static const uint8_t other_mac[6] = {0x52, 0x54, 0x00, 0x99, 0x88, 0x77};
  auto first = slirp(false);
  REQUIRE(dhcp_offer(*first, kGuestMac) == "10.0.2.15");
  const std::vector<uint8_t> saved = first->save_state();
  CHECK(saved.size() > 4);
  auto restored = slirp(false);
  REQUIRE(restored->load_state(saved).ok());
  // 10.0.2.15 is the saved guest's: another client gets the next address, the guest its own again.
  CHECK(dhcp_offer(*restored, other_mac) == "10.0.2.16");
  CHECK(dhcp_offer(*restored, kGuestMac) == "10.0.2.15");
  // Without the state a fresh slirp would hand .15 to anyone first.
  CHECK(dhcp_offer(*slirp(false), other_mac) == "10.0.2.15");
  // Damaged state is refused, not half-applied into a crash.
  CHECK_FALSE(slirp(false)->load_state(std::span<const uint8_t>(saved).first(3)).ok());
  CHECK_FALSE(slirp(false)->load_state(std::span<const uint8_t>(saved).first(saved.size() - 1)).ok());
  auto with_socket = saved;
  with_socket[4] = 42;  // libslirp's marker of a saved guestfwd socket
  CHECK(slirp(false)->load_state(with_socket).error().message.find("guestfwd") != std::string::npos);
  auto newer = saved;
  newer[0] = 0xff;  // a state version from a later libslirp
  auto loaded = slirp(false)->load_state(newer);
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.error().message.find("newer libslirp") != std::string::npos);
}

// The guest ARPs for the gateway, then sends a TCP SYN to 10.0.2.2:<a host loopback listener>;
// returns whether the host side accepted a connection within `wait_ms`.
static bool guest_connect_to_host_loopback(bool restricted, int wait_ms) {
  uint16_t port;
  int server = listen_loopback(port);
  auto net = slirp(restricted);
  Receiver receiver;
  net->attach(&receiver);
  net->send_frame(arp_request("10.0.2.2"));
  auto reply = receiver.wait(is_arp_reply);
  REQUIRE(reply.has_value());
  net->send_frame(tcp_syn(reply->data() + 6, port));
  const bool accepted = accepted_within(server, wait_ms);
  net->attach(nullptr);
  close(server);
  return accepted;
}

TEST_CASE("user network: a guest TCP connection to the gateway reaches host loopback") {
  CHECK(guest_connect_to_host_loopback(false, 5000));
}

TEST_CASE("user network restricted: the guest cannot reach the host") {
  CHECK_FALSE(guest_connect_to_host_loopback(true, 1000));
}

TEST_CASE("user network hostfwd: a host connection becomes guest traffic to the forwarded port") {
  uint16_t free_port;
  int probe = listen_loopback(free_port);
  close(probe);
  auto net = slirp(false, {*parse_hostfwd("tcp:127.0.0.1:" + std::to_string(free_port) + "-:22")});
  Receiver receiver;
  net->attach(&receiver);
  // Teach slirp the guest's MAC (it learns from the guest's ARP), then connect from the host.
  net->send_frame(arp_request("10.0.2.2"));
  REQUIRE(receiver.wait(is_arp_reply).has_value());
  int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(free_port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  connect(client, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  auto syn = receiver.wait([](const std::vector<uint8_t>& f) {
    return f.size() >= 54 && get16(f, 12) == 0x0800 && f[23] == 6 && get16(f, 36) == 22 && (f[47] & 0x02);
  });
  CHECK(syn.has_value());
  close(client);
  net->attach(nullptr);
}

TEST_CASE("user network: hostfwd on a port in use is an error") {
  uint16_t port;
  int taken = listen_loopback(port);
  SlirpBackend::Options options;
  options.forwards.push_back(*parse_hostfwd("tcp:127.0.0.1:" + std::to_string(port) + "-:22"));
  auto net = SlirpBackend::create(options);
  REQUIRE_FALSE(net.ok());
  CHECK(net.error().message.find("port in use") != std::string::npos);
  close(taken);
}

TEST_CASE("user network queues frames while the guest has no receive buffers") {
  auto net = slirp(false);
  Receiver receiver;
  receiver.accept = false;
  net->attach(&receiver);
  net->send_frame(arp_request("10.0.2.2"));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  {
    std::lock_guard lock(receiver.m);
    CHECK(receiver.frames.empty());
    receiver.accept = true;
  }
  CHECK(receiver.wait(is_arp_reply).has_value());
  net->attach(nullptr);
}

TEST_CASE("net socket: two ends exchange whole frames both ways") {
  StreamBackend::Options server_options;
  server_options.server = true;
  auto server = StreamBackend::open(server_options);
  REQUIRE(server.ok());
  StreamBackend::Options client_options;
  client_options.port = (*server)->port();
  auto client = StreamBackend::open(client_options);
  REQUIRE(client.ok());
  Receiver at_server, at_client;
  (*server)->attach(&at_server);
  (*client)->attach(&at_client);
  for (int i = 0; i < 500 && !((*server)->connected() && (*client)->connected()); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE((*client)->connected());
  std::vector<uint8_t> frame(1514, 0xab), reply(60, 0xcd);
  (*client)->send_frame(frame);
  CHECK(at_server.wait([&](const std::vector<uint8_t>& f) { return f == frame; }).has_value());
  for (int i = 0; i < 500 && !(*server)->connected(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  (*server)->send_frame(reply);
  CHECK(at_client.wait([&](const std::vector<uint8_t>& f) { return f == reply; }).has_value());
  (*server)->attach(nullptr);
  (*client)->attach(nullptr);
}

TEST_CASE("tap: created when privileged, frames from the host reach the receiver") {
  if (access("/dev/net/tun", R_OK | W_OK) != 0 || geteuid() != 0) {
    VML_SKIP("tap needs /dev/net/tun and CAP_NET_ADMIN");
  }
  auto tap = TapBackend::open("vmltest" + std::to_string(getpid() % 10000));
  if (!tap.ok()) VML_SKIP("tap: cannot create an interface here");
  std::string name = (*tap)->ifname();
  CHECK(access(("/sys/class/net/" + name).c_str(), F_OK) == 0);
  Receiver receiver;
  (*tap)->attach(&receiver);
  // Bring the interface up and inject a frame on its host side with a packet socket.
  int control = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq request{};
  std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ioctl(control, SIOCGIFFLAGS, &request);
  request.ifr_flags |= IFF_UP;
  REQUIRE(ioctl(control, SIOCSIFFLAGS, &request) == 0);
  int packet = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
  REQUIRE(packet >= 0);
  sockaddr_ll link{};
  link.sll_family = AF_PACKET;
  link.sll_ifindex = static_cast<int>(if_nametoindex(name.c_str()));
  link.sll_halen = 6;
  std::vector<uint8_t> frame(60, 0);
  std::memset(frame.data(), 0xff, 6);
  std::memcpy(frame.data() + 6, kGuestMac, 6);
  frame[12] = 0x88, frame[13] = 0xb5;  // local experimental ethertype
  frame[20] = 0x42;
  REQUIRE(sendto(packet, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&link), sizeof(link)) ==
          60);
  CHECK(receiver
            .wait([](const std::vector<uint8_t>& f) {
              return f.size() >= 21 && f[20] == 0x42 && f[12] == 0x88;
            })
            .has_value());
  (*tap)->send_frame(frame);
  CHECK((*tap)->dropped_tx() == 0);
  (*tap)->attach(nullptr);
  close(packet);
  close(control);
}

TEST_CASE("libslirp loads once, on first use") {
  auto first = slirp_library();
  REQUIRE_MESSAGE(first.ok(), (first.ok() ? "" : first.error().message));
  auto second = slirp_library();
  REQUIRE(second.ok());
  CHECK(*first == *second);
  CHECK(std::string((*first)->slirp_version_string()).rfind("4.", 0) == 0);
}

TEST_CASE("a missing libslirp is an error that names the Debian package") {
  auto lib = load_slirp_library("libslirp-vmlaunch-test-missing.so.0");
  REQUIRE_FALSE(lib.ok());
  CHECK(lib.error().message.find("libslirp-vmlaunch-test-missing.so.0") != std::string::npos);
  CHECK(lib.error().message.find("apt-get install libslirp0") != std::string::npos);
}

TEST_CASE("a library without libslirp's entry points is refused") {
  auto lib = load_slirp_library("libc.so.6");
  REQUIRE_FALSE(lib.ok());
  CHECK(lib.error().message.find("has no slirp_new") != std::string::npos);
}
