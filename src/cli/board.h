/*
 * The progress board of a sync over many servers: on a terminal, one line
 * per active server plus a total line, redrawn in place at most 10 times a
 * second. Rates and ETAs count wire bytes (what crosses the WAN), smoothed
 * per server; the ETA scales the target bytes still to do by the wire
 * bytes each target byte has cost so far.
 *
 * Fed from the sync's progress callback (any order of servers). Time is
 * passed in (ns, monotonic), so tests can drive it.
 */
#ifndef DS_CLI_BOARD_H
#define DS_CLI_BOARD_H

#include <stdint.h>
#include <stdio.h>

#include "distsync/sync.h"

struct board_row {
    char *server;
    uint64_t files_done, files_total, bytes_done, bytes_total, wire;
    uint64_t last_wire; /* at the last rate sample */
    int64_t last_sample, last_seen;
    double rate; /* wire bytes per second, smoothed */
};

struct board {
    FILE *f;
    int enabled;
    unsigned max_lines; /* server lines drawn at most (the rest are summed up) */
    int64_t t0, last_draw;
    struct board_row *rows;
    size_t nrows, cap;
    unsigned drawn; /* lines on screen */
};

/* Prepares a board written to f (borrowed). Nothing is drawn when enabled
 * is 0 (not a terminal, --json, --quiet). */
void board_init(struct board *b, FILE *f, int enabled, int64_t now);

/* Records p (its server's latest counters) and redraws if 100 ms passed
 * since the last draw, or when force. */
void board_update(struct board *b, const ds_sync_progress_t *p, int64_t now, int force);

/* Erases the board's lines, so the next output starts on a clean line. */
void board_clear(struct board *b);

/* Frees the rows. */
void board_free(struct board *b);

/* One board line into buf: "NAME: 12/40 files, 1.2 GiB / 3.0 GiB,
 * 410.2 KiB/s on the wire, ETA 2:05". Exposed for tests. */
void board_fmt_row(char *buf, size_t len, const struct board_row *r);

#endif
