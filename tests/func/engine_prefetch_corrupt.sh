#!/usr/bin/env bash
# sync_delta_cache_corrupt with the basis still in the store, so the
# engine's delta prefetch (a worker thread) finds the corrupt cache entry:
# the run must still report it once (a warning, a "cache dropped" event)
# and every server must still get a delta.
KEEP_V1=1 TEST_NAME=engine_prefetch_corrupt exec bash "$(dirname "$0")/sync_delta_cache_corrupt.sh"
