# Helpers for the bundle tests (tests/func/bundle_*.sh): sourced after sync.bash.

# bundle_store STORE GEN [N]: generation GEN of a store of N (default 12)
# files of 8..200 KB of random bytes (seeded by name, so GEN 1 files differ
# from GEN 0 in a few places: deltas pay), a copy of one under another name,
# a small file, and from GEN 1 on a new file and one removed.
bundle_store() {
  python3 - "$1" "$2" "${3:-12}" <<'PY'
import os, random, sys
store, gen, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for d in ("patches/sub", "engines"):
    os.makedirs(os.path.join(store, d), exist_ok=True)
def put(rel, data):
    with open(os.path.join(store, rel), "wb") as f:
        f.write(data)
for i in range(n):
    r = random.Random(f"file{i}")
    b = bytearray(r.randbytes(8192 + r.randrange(200000)))
    for g in range(1, gen + 1):          # each generation edits a few places
        rg = random.Random(f"file{i}-gen{g}")
        for _ in range(3):
            o = rg.randrange(len(b) - 64)
            b[o:o + 32] = rg.randbytes(32)
        b += rg.randbytes(1000)
    put(f"{'patches' if i % 2 else 'engines'}/f{i:03d}.bin", bytes(b))
put("patches/sub/copy.bin", open(os.path.join(store, "engines/f000.bin"), "rb").read())
put("engines/small.txt", f"generation {gen}\n".encode())
if gen >= 1:
    put(f"patches/new{gen}.bin", random.Random(f"new{gen}").randbytes(30000))
    p = os.path.join(store, "engines/f002.bin")
    if os.path.exists(p):
        os.unlink(p)
PY
}

# bundle_conf CONF STORE STATE: servers live (file://$tmp/live) and off
# (file://$tmp/off), prune allowed for one file in the whole store.
bundle_conf() {
  st_conf "$1" "$2" "$3" live "file://$tmp/live" local off "file://$tmp/off" local
  sed -i 's/^prune = yes$/prune = yes\nmax_delete = 50%/' "$1"
  mkdir -p "$tmp/live" "$tmp/off"
}

# tree_sig DIR: every entry under DIR (the state dir's manifest included, its
# lease and tmp files aside) with type, size, mtime, inode and SHA-256.
tree_sig() {
  python3 - "$1" <<'PY'
import hashlib, os, sys
root = sys.argv[1]
for r, ds, fs in sorted(os.walk(root)):
    ds.sort()
    for f in sorted(fs):
        p = os.path.join(r, f)
        rel = os.path.relpath(p, root)
        if rel.startswith(".distsync/") and rel != ".distsync/manifest":
            continue
        st = os.lstat(p)
        h = hashlib.sha256(open(p, "rb").read()).hexdigest() if os.path.isfile(p) else "-"
        print(rel, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino, h)
PY
}
