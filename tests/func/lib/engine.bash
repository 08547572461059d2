# Helpers for the engine tests (tests/func/engine_*.sh), sourced after
# sync.bash: config writers, incompressible content, manifest checks and
# the lease watcher / reader of engine_check.py.
ENGINE_CHECK="$DS_SRC/tests/func/lib/engine_check.py"
export DISTSYNC_TEST_NO_FSYNC=1 DISTSYNC

# now_ms: wall clock in milliseconds.
now_ms() { date +%s%3N; }

# en_head CONF STORE STATE [LINE...]: writes the [console] section.
en_head() {
  local conf=$1
  printf '[console]\nstore = %s\nstate = %s\n' "$2" "$3" >"$conf"
  shift 3
  [ $# = 0 ] || printf '%s\n' "$@" >>"$conf"
}

# en_server CONF NAME TARGET TRANSPORT [LINE...]: appends a [server] section
# (every class, prune on) and creates its target root.
en_server() {
  local conf=$1
  printf '\n[server %s]\nurl = file://%s\ntransport = %s\nclasses = patches engines definitions\nprune = yes\n' \
    "$2" "$3" "$4" >>"$conf"
  mkdir -p "$3"
  shift 4
  [ $# = 0 ] || printf '%s\n' "$@" >>"$conf"
}

# en_fill STORE N BYTES [KNOWN]: (re)writes N incompressible files
# patches/fK.bin of BYTES bytes (zstd cannot shrink them below a cap);
# appends "path sha256" of each to KNOWN. The other classes get one small
# file each (a class folder must exist and empty folders are not synced).
en_fill() {
  local store=$1 n=$2 size=$3 known=${4:-} k c
  for c in engines definitions; do
    [ -e "$store/$c/$c.txt" ] && continue
    mkdir -p "$store/$c" && echo "$c" >"$store/$c/$c.txt"
    [ -z "$known" ] || echo "$c/$c.txt $(sha256sum <"$store/$c/$c.txt" | cut -d' ' -f1)" >>"$known"
  done
  mkdir -p "$store/patches"
  for k in $(seq 1 "$n"); do
    head -c "$size" /dev/urandom >"$store/patches/f$k.tmp" && mv "$store/patches/f$k.tmp" "$store/patches/f$k.bin"
    [ -z "$known" ] || echo "patches/f$k.bin $(sha256sum <"$store/patches/f$k.bin" | cut -d' ' -f1)" >>"$known"
  done
}

# en_converged STORE ROOT WHAT: the target equals the store (diff -r, no
# tmp left) and its manifest records exactly the store's files.
en_converged() {
  st_check_converged "$1" "$2" "$3"
  python3 "$ENGINE_CHECK" manifest "$2" --store "$1" "$3" || fail=1
}

# en_manifest_valid ROOT WHAT: the manifest (if any) decodes.
en_manifest_valid() {
  [ ! -e "$1/.distsync/manifest" ] || python3 "$ENGINE_CHECK" manifest "$1" "$2" || fail=1
}

# en_watch STOP OUT ROOT...: starts the lease watcher (returns once it
# samples); sets watch_pid.
en_watch() {
  local i
  rm -f "$2.ready"
  python3 "$ENGINE_CHECK" watch "$@" &
  watch_pid=$!
  st_pids+=("$watch_pid")
  for i in $(seq 100); do [ -e "$2.ready" ] && return 0; sleep 0.05; done
  bad "the lease watcher did not start within 5 s"
}

# en_json FILE EXPR: prints EXPR evaluated on the JSON in FILE (as d).
en_json() {
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# en_bytes DIR: total size of the content files under DIR.
en_bytes() { find "$1" -path "$1/.distsync" -prune -o -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }

# en_ncontent ROOT: number of content files on a target.
en_ncontent() { find "$1" -path "$1/.distsync" -prune -o -type f -print | wc -l; }

# en_nparts ROOT: number of files in ROOT/.distsync/tmp.
en_nparts() { find "$1/.distsync/tmp" -type f 2>/dev/null | wc -l; }

# en_wait_gone PID...: until those processes exit (5 s at most each).
en_wait_gone() {
  local a i
  for a in "$@"; do
    for i in $(seq 100); do kill -0 "$a" 2>/dev/null || break; sleep 0.05; done
  done
}
