"""Drives thousands of random, malformed, oversized and truncated requests and abrupt disconnects
against a running machine's control socket. Exits 0 if every reply that came back was a JSON object
(an error object where the request was bad) and the server kept answering throughout; prints counts."""
import json
import os
import random
import socket
import sys
import time

path = sys.argv[1]
rounds = int(sys.argv[2])
rng = random.Random(12)
# Bazel's TEST_TMPDIR is deeper than sun_path allows; a directory fd is not.
dir_fd = os.open(os.path.dirname(path), os.O_RDONLY)
address = "/proc/self/fd/%d/%s" % (dir_fd, os.path.basename(path))


def connect():
    # A full listen backlog (EAGAIN on unix sockets) only means the server is busy: try again.
    for attempt in range(500):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(address)
            return s
        except BlockingIOError:
            s.close()
            time.sleep(0.01)
    raise RuntimeError("the control socket never accepted")


def read_lines(s, want):
    data = b""
    while data.count(b"\n") < want:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return [line for line in data.split(b"\n") if line]


def junk():
    kind = rng.randrange(12)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))).replace(b"\n", b" ")
    if kind == 1:
        return b"[" * rng.randrange(1, 20000)
    if kind == 2:
        return json.dumps({"execute": rng.choice([1, None, [], {}, "nope", "status" * 50])}).encode()
    if kind == 3:
        return json.dumps({"execute": "status", "id": rng.choice([[1] * 50, {"a": 1}, 1.5, True, "x" * 300])}).encode()
    if kind == 4:
        return json.dumps({"execute": "query-stats", "arguments": rng.choice([1, "x", [], None])}).encode()
    if kind == 5:
        return b'{"execute": "status", "id": "\xff\xfe"}'
    if kind == 6:
        return b'{"execute": "sta'  # truncated; the newline ends it
    if kind == 7:
        return json.dumps([{"execute": "status"}]).encode()
    if kind == 8:
        return json.dumps({"execute": rng.choice(["pause", "resume", "powerdown", "query-devices", "status"]),
                           "id": rng.randrange(1 << 40)}).encode()
    if kind == 9:
        return b"\x00" * rng.randrange(1, 100)
    if kind == 10:
        return json.dumps({"execute": "status", "id": 1, "extra": {"deep": [[[[[]]]]]}}).encode()
    return b'"just a string"'


sent = replies = errors = 0
conn = connect()
greeting = json.loads(read_lines(conn, 1)[0])
assert greeting["vmlaunch"]["version"]["protocol"] == 1, greeting
for i in range(rounds):
    line = junk()
    conn.sendall(line + b"\n")
    sent += 1
    for raw in read_lines(conn, 1):
        reply = json.loads(raw)
        assert isinstance(reply, dict), raw
        replies += 1
        if "error" in reply:
            assert isinstance(reply["error"]["class"], str) and isinstance(reply["error"]["message"], str), reply
            errors += 1
    if i % 200 == 0:
        # Abrupt disconnects: mid-line, mid-request, and before reading the greeting.
        half = connect()
        half.sendall(b'{"execute": "status", "id": ')
        half.close()
        connect().close()
        conn.close()
        conn = connect()
        read_lines(conn, 1)

def until(conn, accept, limit=1000):
    """The first object `accept` takes, skipping replies and events still in flight (pause and
    resume among the random requests emit STATE events to every client)."""
    for _ in range(limit):
        for raw in read_lines(conn, 1):
            obj = json.loads(raw)
            if accept(obj):
                return obj
    raise AssertionError("no matching reply")


# The random requests may have left the machine paused: resume it (pause/resume really work).
conn.sendall(b'{"execute": "resume", "id": "final-resume"}\n')
resumed = until(conn, lambda o: o.get("id") == "final-resume")
assert "return" in resumed, resumed

# An oversized line (no newline for 200 KiB) gets a typed error, and the connection still works.
conn.sendall(b"x" * (200 * 1024) + b"\n")
big = until(conn, lambda o: "error" in o and o["error"].get("class") == "RequestTooLarge")
conn.sendall(b'{"execute": "status", "id": "after-big"}\n')
after = until(conn, lambda o: o.get("id") == "after-big")
assert after["return"]["state"] == "running", after

# More connections than the server takes: the extra ones get an error, the machine does not care.
crowd = [connect() for _ in range(40)]
refused = 0
for s in crowd:
    first = json.loads(read_lines(s, 1)[0])
    refused += "error" in first
for s in crowd:
    s.close()

# A client that never reads: pipelined requests until its replies back up; the server drops it.
hog = connect()
hog.setblocking(False)
try:
    for _ in range(20000):
        hog.send(b'{"execute": "query-devices"}\n')
except (BlockingIOError, BrokenPipeError, ConnectionResetError):
    pass
hog.close()

time.sleep(0.2)
conn = connect()
read_lines(conn, 1)
conn.sendall(b'{"execute": "status", "id": 1}\n')
final = json.loads(read_lines(conn, 1)[0])
assert final["return"]["state"] == "running", final
print("sent %d, replies %d, errors %d, crowd refused %d" % (sent, replies, errors, refused))
