/*
 * A live progress line on a terminal: items, bytes done (and total when
 * known), a smoothed rate and an ETA, redrawn at most 10 times a second.
 * Used by scan, and by sync for its transfers. Time is passed in (ns from
 * any monotonic clock), so callers decide when to sample it.
 */
#ifndef DS_CLI_PROGRESS_H
#define DS_CLI_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

struct progress {
    FILE *f;
    int enabled;
    const char *label;
    int64_t t0, last_draw, last_sample;
    uint64_t last_bytes;
    double rate;   /* bytes per second, smoothed */
    int drawn;     /* a line is on screen */
    char note[48]; /* appended to the line when not empty, e.g. "1.2 MiB on the wire" */
};

/* Monotonic now, in ns. */
int64_t progress_now(void);

/* Prepares a progress line written to f (borrowed) with this label (a
 * static string). Nothing is ever drawn when enabled is 0. */
void progress_init(struct progress *p, FILE *f, int enabled, const char *label, int64_t now);

/* Redraws the line if 100 ms passed since the last draw (or force). total 0:
 * unknown (no ETA). items_name: e.g. "files". */
void progress_update(struct progress *p, int64_t now, uint64_t items, const char *items_name,
                     uint64_t done, uint64_t total, int force);

/* Erases the line, so the next output starts on a clean line. */
void progress_clear(struct progress *p);

/* "1.2 GiB", "512 B": binary units for sizes. */
void progress_fmt_bytes(char *buf, size_t len, uint64_t bytes);
/* "1.4 GB/s", "850 MB/s": decimal units for rates. */
void progress_fmt_rate(char *buf, size_t len, double bytes_per_s);
/* "0.9 s", "2:05", "1:02:03". */
void progress_fmt_duration(char *buf, size_t len, double seconds);

#endif
