# Independent encoder/decoder of the apply protocol (src/PROTOCOL.md) for
# driving `distsync agent` over a pipe in shell tests.
#   agent_proto.py encode OUT SCRIPT   (SCRIPT: python using the helpers below)
#   agent_proto.py decode IN           (one line per reply: id TYPE code [detail])
import hashlib, struct, sys

T = dict(HELLO=1, LEASE=2, MANIFEST_GET=3, LIST=4, HASH=5, SIG=6, FILE_BEGIN=0x10, COPY=0x11,
         LITERAL=0x12, DELTA=0x13, DELTA_END=0x14, FILE_COMMIT=0x15, FILE_ABORT=0x16,
         DELETE=0x20, MANIFEST_COMMIT=0x21, BYE=0x3f)
R = {0x81: "HELLO_OK", 0x82: "LEASE_OK", 0x83: "BUSY", 0x84: "MANIFEST_DATA", 0x85: "LIST_DATA",
     0x86: "HASH_OK", 0x87: "FILE_OK", 0x88: "FILE_ERR", 0x89: "OK", 0x8a: "ERR", 0x8b: "SIG_DATA"}
NO_MTIME = -2**63


def s(x):
    x = x.encode()
    return struct.pack(">H", len(x)) + x


out, nid = bytearray(), 0


def frame(t, payload):
    global nid
    nid += 1
    out.extend(struct.pack(">IBBHI", len(payload), T[t], 0, 0, nid) + payload)
    return nid


def hello(c="sh-console"):
    return frame("HELLO", struct.pack(">IHH", 0x44534150, 1, 1) + s(c) + s("sh"))


def lease(c="sh-console", op=1, ttl=60):
    return frame("LEASE", bytes([op]) + s(c) + struct.pack(">I", 99) + s("sh-host") +
                 struct.pack(">I", ttl))


def begin(fid, path, size, mtime=NO_MTIME):
    return frame("FILE_BEGIN", struct.pack(">I", fid) + s(path) + struct.pack(">QIq", size, 0o644, mtime))


def copy(fid, basis, off, n):
    return frame("COPY", struct.pack(">I", fid) + s(basis) + struct.pack(">QQ", off, n))


def commit(fid, data):
    return frame("FILE_COMMIT", struct.pack(">IQ", fid, len(data)) + hashlib.sha256(data).digest())


def whole(fid, path, data, mtime=NO_MTIME):
    begin(fid, path, len(data), mtime)
    if data:
        frame("LITERAL", struct.pack(">IBI", fid, 0, len(data)) + data)
    return commit(fid, data)


def path_msg(t, p):
    return frame(t, s(p))


def sig(p, block=2048, strong=32):
    return frame("SIG", s(p) + struct.pack(">IB", block, strong))


def empty(t):
    return frame(t, b"")


def rstr(p, o):
    n = struct.unpack(">H", p[o:o + 2])[0]
    return p[o + 2:o + 2 + n].decode("utf-8", "replace"), o + 2 + n


def decode(b):
    o = 0
    while o + 12 <= len(b):
        n, t, fl, _, i = struct.unpack(">IBBHI", b[o:o + 12])
        p = b[o + 12:o + 12 + n]
        code, detail = "", ""
        if t in (0x88, 0x8a):
            q = 4 if t == 0x88 else 0
            code = struct.unpack(">i", p[q:q + 4])[0]
            path, q = rstr(p, q + 4)
            msg, q = rstr(p, q)
            detail = f"{path}: {msg}"
        elif t == 0x89:
            code = struct.unpack(">Q", p[0:8])[0]
        elif t == 0x87:
            code = struct.unpack(">q", p[12:20])[0]  # mtime_ns
        elif t == 0x86:
            _, q = rstr(p, 0)
            code = struct.unpack(">q", p[q + 8:q + 16])[0]  # mtime_ns
        elif t == 0x83:
            _, q = rstr(p, 0)
            _, q = rstr(p, q + 4)
            detail, _ = rstr(p, q + 8)
        print(i, R.get(t, hex(t)), code, "FATAL" if fl & 2 else "", detail)
        o += 12 + n


if __name__ == "__main__":
    if sys.argv[1] == "encode":
        exec(open(sys.argv[3]).read())
        open(sys.argv[2], "wb").write(out)
    else:
        decode(open(sys.argv[2], "rb").read())
