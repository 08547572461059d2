#!/usr/bin/env python3
# A fake `distsync agent` for tests that need a hostile or hung target no
# real agent produces. Run as the server's `agent =` command (the console
# execs `AGENT agent --root DIR`); it speaks src/PROTOCOL.md on stdin/stdout.
# The behaviour is read from DIR/fake-mode: "MODE [LIMIT_BYTES]":
#   silent          reads HELLO, then never answers
#   garbage-deaf    answers HELLO with a malformed frame, then neither reads
#                   nor ends (a console that gives up must not wait for it)
#   slow-manifest   sends the (empty) manifest in 8 slices 0.7 s apart: a
#                   slow target that keeps making progress
#   stall-manifest  answers HELLO and LEASE, sends one MANIFEST_DATA slice
#                   (MORE), then never answers again
#   endless-manifest / endless-list / endless-sig
#                   streams MANIFEST_DATA / LIST_DATA / SIG_DATA with MORE
#                   set on every frame, until LIMIT_BYTES (default 4 GiB)
#                   are sent or the console hangs up
# Every other request gets a plausible answer (an empty manifest, a listing
# of patches/big.bin of FAKE_SIZE bytes in sig mode, HASH_OK with a random
# hash, OK), so the console reaches the stream under test.
import hashlib, os, struct, sys, time

root = sys.argv[sys.argv.index("--root") + 1]
words = open(os.path.join(root, "fake-mode")).read().split()
mode = words[0]
limit = int(words[1]) if len(words) > 1 else 4 << 30
FAKE_SIZE = 1 << 20
inp, out = sys.stdin.buffer, sys.stdout.buffer
sent = 0


def s(x):
    x = x.encode()
    return struct.pack(">H", len(x)) + x


def send(t, i, payload, more=False):
    global sent
    out.write(struct.pack(">IBBHI", len(payload), t, 1 if more else 0, 0, i) + payload)
    out.flush()
    sent += 12 + len(payload)


def hang():
    while True:
        time.sleep(3600)


def read_frame():
    h = inp.read(12)
    if len(h) < 12:
        sys.exit(0)
    n, t, _, _, i = struct.unpack(">IBBHI", h)
    return t, i, inp.read(n)


def empty_manifest():
    body = b"DSMANIF\n" + struct.pack(">IIQ", 1, 0, 0)
    return body + hashlib.sha256(body).digest()


def list_entry(path, typ, size):
    return s(path) + struct.pack(">BQqI", typ, size, 0, 0o644)


def endless(t, i, first, nxt):
    """Frames of type t: first() then nxt(k) for k = 1, 2, ... until limit."""
    try:
        send(t, i, first(), more=True)
        k = 1
        while sent < limit:
            send(t, i, nxt(k), more=True)
            k += 1
    except BrokenPipeError:
        pass
    sys.exit(0)


# Long paths (~3 KB, the decoded form then costs about what the wire
# carried): the console's memory shows the bytes it kept, not per-entry
# overhead. Sorted and safe, so only the size cap can stop the stream.
LONG = "definitions/" + ("x" * 200 + "/") * 15


def manifest_slice(k):  # ~1 MiB
    ents = [f"{LONG}{k:08d}/{j:04d}.dat" for j in range(330)]
    return b"".join(s(p) + struct.pack(">QQ", 1, 0) + b"\x01" * 32 for p in ents)


def list_slice(k):
    ents = [list_entry(f"{LONG}{k:08d}/{j:04d}.dat", 1, 1) for j in range(330)]
    return struct.pack(">I", len(ents)) + b"".join(ents)


while True:
    t, i, p = read_frame()
    if t == 0x01:  # HELLO
        if mode == "silent":
            hang()
        if mode == "garbage-deaf":
            out.write(b"\xff" * 12)
            out.flush()
            hang()
        send(0x81, i, struct.pack(">H", 1) + s("fake agent") + struct.pack(">II", 8 << 20, 16))
    elif t == 0x02:  # LEASE
        if p[0] == 3:
            send(0x89, i, struct.pack(">Q", 0))
        else:
            send(0x82, i, struct.pack(">qI", int(time.time()) + 300, 0))
    elif t == 0x03:  # MANIFEST_GET
        if mode == "stall-manifest":
            send(0x84, i, empty_manifest()[:10], more=True)
            hang()
        if mode == "slow-manifest":
            m = empty_manifest()
            pieces = [m[k:k + 7] for k in range(0, len(m), 7)]
            for piece in pieces[:-1]:
                send(0x84, i, piece, more=True)
                time.sleep(0.7)
            send(0x84, i, pieces[-1])
            continue
        if mode == "endless-manifest":
            hdr = b"DSMANIF\n" + struct.pack(">IIQ", 1, 0, 1 << 20)
            endless(0x84, i, lambda: hdr, manifest_slice)
        send(0x84, i, empty_manifest())
    elif t == 0x04:  # LIST
        if mode == "endless-list":
            endless(0x85, i, lambda: list_slice(0), list_slice)
        ents = [list_entry("patches", 2, 0), list_entry("patches/big.bin", 1, FAKE_SIZE)]
        send(0x85, i, struct.pack(">I", 2) + b"".join(ents) if mode == "endless-sig" else struct.pack(">I", 0))
    elif t == 0x05:  # HASH
        path = p[2:2 + struct.unpack(">H", p[:2])[0]]
        send(0x86, i, struct.pack(">H", len(path)) + path + struct.pack(">Qq", FAKE_SIZE, 0) + os.urandom(32))
    elif t == 0x06:  # SIG
        if mode == "endless-sig":
            endless(0x8b, i, lambda: b"rs\x01\x47" + b"\x00" * ((1 << 20) - 4), lambda k: b"\x00" * (1 << 20))
        send(0x8a, i, struct.pack(">i", -10015) + s("") + s("no signature here"))
    elif t == 0x3F:  # BYE
        send(0x89, i, struct.pack(">Q", 0))
        sys.exit(0)
    else:  # requests with no reply, or answered with OK
        if t in (0x15, 0x16):
            send(0x88, i, p[:4] + struct.pack(">i", -10024) + s("") + s("fake agent"))
        elif t in (0x20, 0x21):
            send(0x89, i, struct.pack(">Q", 0))
