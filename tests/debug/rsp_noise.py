#!/usr/bin/env python3
"""A hostile gdb client: garbage, bad checksums, an oversized packet and random bytes to the stub at
argv[1] (a unix socket path), then one well-formed packet whose reply must still come. Prints the
last reply; exits 1 if the stub closed or did not answer."""
import random
import socket
import sys

s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(10)


def packet(payload: bytes) -> bytes:
    return b"$" + payload + b"#%02x" % (sum(payload) & 0xFF)


rng = random.Random(15)
s.sendall(b"garbage before any packet\x00\xff")
s.sendall(b"$g#00")  # bad checksum: nacked
s.sendall(b"$qSupported#zz")  # not even hex
s.sendall(packet(b"m" + b"1" * 100000))  # far over PacketSize
s.sendall(packet(b"M80000000,ffffffff:00"))  # length and data disagree
s.sendall(packet(b"Pfffffffffffffffffffffff=00"))
# Noise from an alphabet that cannot spell a command with an effect on the machine (c, s, k, D, M,
# P, Z), so a packet that happens to be well framed only reads.
for _ in range(50):
    s.sendall(bytes(rng.choice(b"$#}+-0123456789abdefgmpq,:;") for _ in range(rng.randint(1, 400))))
s.sendall(b"#00")
s.sendall(packet(b"qC"))
data = b""
try:
    while b"$QC" not in data or not data.split(b"$QC")[-1].count(b"#"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    pass
tail = data.split(b"$QC")[-1] if b"$QC" in data else b""
print("reply:", (b"QC" + tail[:8]).decode(errors="replace") if tail else "none")
sys.exit(0 if tail else 1)
