#!/usr/bin/env python3
"""smb_wire.py: a TCP relay in front of smbd that reads the SMB2 messages
crossing it, for tests that check what the client puts on the wire.

usage: smb_wire.py LISTEN_PORT TARGET_PORT REPORT [--unsigned-replies]
                   [--no-signing-offer]

Every connection to 127.0.0.1:LISTEN_PORT is relayed to 127.0.0.1:TARGET_PORT.
REPORT gets one line per SMB2 message (compounded ones too), flushed as it
goes: "CONN DIR KIND COMMAND FLAGS STATUS SESSION", CONN the connection's
number, DIR "c" (client to server) or "s", KIND "plain" (0xFE 'SMB') or
"enc" (0xFD 'SMB': an SMB3 transform, whose inside is not readable; its
SESSION is the transform's), COMMAND, FLAGS, STATUS (the NT status) and
SESSION (the session id) in hex, 0 where the message does not show them.

--unsigned-replies plays a server that does not sign: it clears the signed
flag and zeroes the signature of every plain reply after the first
successful SESSION_SETUP reply (a man in the middle stripping signatures);
a client that requires signing must then give up. --no-signing-offer
clears the SecurityMode of NEGOTIATE replies (a server that does not offer
signing; the reply of a session's own NEGOTIATE is then not what the
server sent, which SMB 3 clients detect later too).
"""
import itertools
import socket
import struct
import sys
import threading

lock = threading.Lock()
counter = itertools.count(1)


def log(report, line):
    with lock:
        with open(report, "a") as f:
            f.write(line + "\n")


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def inspect(msg, direction, report, state, opts):
    """Logs the messages of one NetBIOS frame; returns it, maybe altered."""
    conn = state["conn"]
    if msg[:4] == b"\xfdSMB" and len(msg) >= 52:
        sess, = struct.unpack_from("<Q", msg, 44)
        log(report, "%d %s enc 0 0 0 %x" % (conn, direction, sess))
        return msg
    if msg[:4] != b"\xfeSMB":
        log(report, "%d %s other 0 0 0 0" % (conn, direction))
        return msg
    out = bytearray(msg)
    off = 0
    while off + 64 <= len(out):
        status, cmd = struct.unpack_from("<IH", out, off + 8)
        flags, nxt = struct.unpack_from("<II", out, off + 16)
        sess, = struct.unpack_from("<Q", out, off + 40)
        log(report, "%d %s plain %x %x %x %x" % (conn, direction, cmd, flags, status, sess))
        if direction == "s" and cmd == 1 and status == 0:
            state["authed"] = True
        elif direction == "s" and cmd == 0 and "--no-signing-offer" in opts:
            struct.pack_into("<H", out, off + 64 + 2, 0)
        elif direction == "s" and "--unsigned-replies" in opts and state.get("authed"):
            struct.pack_into("<I", out, off + 16, flags & ~0x8)
            out[off + 48:off + 64] = b"\0" * 16
        if nxt == 0:
            break
        off += nxt
    return bytes(out)


def pump(src, dst, direction, report, state, opts):
    try:
        while True:
            hdr = recv_exact(src, 4)
            if hdr is None:
                break
            n = int.from_bytes(hdr[1:], "big")
            body = recv_exact(src, n)
            if body is None:
                break
            dst.sendall(hdr + inspect(body, direction, report, state, opts))
    except OSError:
        pass
    for s in (dst, src):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(conn, target, report, opts):
    try:
        up = socket.create_connection(("127.0.0.1", target))
    except OSError:
        conn.close()
        return
    state = {"conn": next(counter)}
    t = threading.Thread(target=pump, args=(conn, up, "c", report, state, opts), daemon=True)
    t.start()
    pump(up, conn, "s", report, state, opts)
    t.join()
    conn.close()
    up.close()


def main():
    listen, target, report = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    opts = sys.argv[4:]
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen))
    srv.listen(16)
    open(report, "w").close()
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, target, report, opts), daemon=True).start()


if __name__ == "__main__":
    main()
