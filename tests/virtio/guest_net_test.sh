#!/usr/bin/env bash
# End-to-end virtio-net with `user` networking on the riscv64 Linux guest through `vmlaunch up`:
# the guest gets an address by DHCP from slirp, fetches a page from a web server on the host's
# loopback through the gateway 10.0.2.2, and serves a page that the host fetches through a
# `hostfwd` rule.
source tests/lib.sh
source tests/boot/console.sh

use_riscv64_guest tests/virtio/guest_net_test.sh

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
web_port=$(free_port)
fwd_port=$(free_port)

# A host web server on loopback only: reachable from the guest through slirp's gateway.
mkdir -p "$tmp/www"
echo "page-from-the-host-$$" >"$tmp/www/index.txt"
python3 -m http.server --bind 127.0.0.1 --directory "$tmp/www" "$web_port" >"$tmp/http.log" 2>&1 &
web_pid=$!
trap 'kill $web_pid 2>/dev/null' EXIT

# busybox udhcpc only reports the lease; this script applies it (no default script in the initramfs).
guest_cmd=$(cat <<GUEST
printf '#!/bin/sh\ncase "\$1" in bound|renew) ip addr add \$ip/\$mask dev \$interface; ip route add default via \$router;; esac\n' > /tmp/dhcp.sh
chmod +x /tmp/dhcp.sh
ip link set eth0 up
udhcpc -i eth0 -n -q -t 10 -s /tmp/dhcp.sh
ip -4 addr show eth0 | grep inet
cat /sys/class/net/eth0/address
wget -q -O - http://10.0.2.2:$web_port/index.txt
mkdir -p /www && echo guest-served-page > /www/index.html
httpd -p 8080 -h /www
echo httpd-up
sleep 600
GUEST
)
cmd64=$(printf '%s' "$guest_cmd" | base64 -w0)
{
  riscv64_guest_yaml net-test 2 "console=ttyS0 quiet vml.cmd64=$cmd64"
  cat <<YAML
  net:
    user0: {driver: user, hostfwd: ["tcp:127.0.0.1:$fwd_port-:8080"]}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: virtio-net-mmio, id: net0, netdev: user0}
YAML
} >"$tmp/net.yaml"

vm_start "$tmp/net.yaml"
vm_wait "httpd-up" 900
up=$?
check "the guest gets 10.0.2.15 by DHCP through user networking" grep -aq "inet 10.0.2.15/24" "$vm_out"
check "the guest's MAC is stable and QEMU-style (52:54:00:...)" grep -aqE "^52:54:00:[0-9a-f:]{8}" "$vm_out"
check "the guest fetches a page from the host's loopback through 10.0.2.2" grep -aq "page-from-the-host-$$" "$vm_out"
fetched=""
if [ "$up" -eq 0 ]; then
  for _ in $(seq 1 30); do
    fetched=$(python3 -c "import urllib.request,sys; print(urllib.request.urlopen('http://127.0.0.1:$fwd_port/', timeout=10).read().decode())" 2>/dev/null) && break
    sleep 1
  done
fi
check "hostfwd tcp:127.0.0.1:$fwd_port-:8080 reaches the guest's web server" test "$fetched" = "guest-served-page"
vm_stop
[ -n "$fetched" ] || vm_dump
finish
