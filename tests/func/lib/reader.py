# A reader that hammers target files while syncs run (tests/func: sync_reader,
# ssh_sftp_*): whole-file reads, over and over, of every file under the
# roots (.distsync skipped) until the STOP file exists. Each read's sha256
# must be one of the versions ever generated for that path (KNOWN, from
# mkstore.py --known): a mixed or short read counts as bad. A path that is
# absent is skipped. Writes "READS BAD" and up to 5 messages to OUT.
# usage: reader.py KNOWN STOP OUT ROOT...
import hashlib, os, sys, time
known_file, stop, out = sys.argv[1], sys.argv[2], sys.argv[3]
roots = sys.argv[4:]
ok = set(tuple(l.split()) for l in open(known_file) if l.strip())
reads = bad = 0
msgs = []
while not os.path.exists(stop):
    for root in roots:
        for r, ds, fs in os.walk(root):
            ds[:] = [d for d in ds if d != ".distsync"]
            for f in fs:
                p = os.path.join(r, f)
                try:
                    with open(p, "rb") as fh:
                        data = fh.read()
                except FileNotFoundError:
                    continue
                reads += 1
                rel = os.path.relpath(p, root)
                h = hashlib.sha256(data).hexdigest()
                if (rel, h) not in ok:
                    bad += 1
                    if len(msgs) < 5:
                        msgs.append(f"{root}: {rel}: read {len(data)} bytes, sha256 {h} is no known version")
with open(out, "w") as o:
    o.write(f"{reads} {bad}\n" + "\n".join(msgs) + "\n")
