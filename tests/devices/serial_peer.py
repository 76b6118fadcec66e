#!/usr/bin/env python3
"""The host end of a virtserialport on a unix socket chardev (server): connects (retrying until the
socket exists), records the first line the guest sends into OUT, answers with REPLY, then keeps
reading until the machine goes away. Usage: serial_peer.py SOCKET OUT REPLY"""
import socket
import sys
import time

path, out, reply = sys.argv[1], sys.argv[2], sys.argv[3]
deadline = time.time() + 600
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
while True:
    try:
        sock.connect(path)
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("serial_peer: no socket at " + path)
        time.sleep(0.05)
sock.settimeout(max(1, deadline - time.time()))
received = b""
try:
    while b"\n" not in received:
        data = sock.recv(4096)
        if not data:
            break
        received += data
    with open(out, "wb") as f:
        f.write(received)
    if b"\n" in received:
        sock.sendall(reply.encode() + b"\n")
    while sock.recv(4096):
        pass
except OSError:
    pass
