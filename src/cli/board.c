/* The multi-server progress board (see board.h). */
#include <stdlib.h>
#include <string.h>

#include "board.h"
#include "cli.h"
#include "progress.h"

#define REDRAW_NS    100000000LL
#define SAMPLE_NS    200000000LL
#define DEFAULT_ROWS 12u

void board_init(struct board *b, FILE *f, int enabled, int64_t now)
{
    *b = (struct board){.f = f, .enabled = enabled, .max_lines = DEFAULT_ROWS};
    b->t0 = now;
    b->last_draw = now - REDRAW_NS;
}

void board_free(struct board *b)
{
    for (size_t i = 0; i < b->nrows; i++)
        free(b->rows[i].server);
    free(b->rows);
    b->rows = NULL;
    b->nrows = b->cap = 0;
}

static struct board_row *row_of(struct board *b, const char *server, int64_t now)
{
    struct board_row *r;

    for (size_t i = 0; i < b->nrows; i++)
        if (strcmp(b->rows[i].server, server) == 0)
            return &b->rows[i];
    if (b->nrows == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        struct board_row *v = realloc(b->rows, cap * sizeof(*v));

        if (v == NULL)
            return NULL;
        b->rows = v;
        b->cap = cap;
    }
    r = &b->rows[b->nrows];
    *r = (struct board_row){.server = strdup(server), .last_sample = now};
    if (r->server == NULL)
        return NULL;
    b->nrows++;
    return r;
}

/* Exponential smoothing of the wire rate over samples 200 ms apart. No
 * rate while the server prepares: the few bytes of a handshake gave one of
 * some 500 B/s that the first transfer samples inherited, so the first ETAs
 * of an SSH sync said hours for seconds. */
static void sample(struct board_row *r, int64_t now)
{
    double dt = (double)(now - r->last_sample) / 1e9;
    double inst;

    if (r->files_total == 0) {
        r->last_sample = now;
        r->last_wire = r->wire;
        r->rate = 0;
        return;
    }
    if (dt * 1e9 < SAMPLE_NS)
        return;
    inst = (double)(r->wire - r->last_wire) / dt;
    r->rate = r->rate == 0 ? inst : 0.7 * r->rate + 0.3 * inst;
    r->last_sample = now;
    r->last_wire = r->wire;
}

/* Seconds left: the target bytes to do, at the wire cost per target byte
 * seen so far, over the wire rate. < 0: unknown. */
static double eta_s(uint64_t done, uint64_t total, uint64_t wire, double rate)
{
    double per_byte;

    if (total <= done || rate <= 0)
        return -1;
    per_byte = done > 0 ? (double)wire / (double)done : 1.0;
    return (double)(total - done) * per_byte / rate;
}

static void fmt_line(char *buf, size_t len, const char *name, uint64_t fd, uint64_t ft, uint64_t bd,
                     uint64_t bt, uint64_t wire, double rate)
{
    char d[32], t[32], w[32], r[32], e[48] = "";
    double eta = eta_s(bd, bt, wire, rate);

    progress_fmt_bytes(d, sizeof(d), bd);
    progress_fmt_bytes(t, sizeof(t), bt);
    progress_fmt_bytes(w, sizeof(w), wire);
    progress_fmt_rate(r, sizeof(r), rate);
    if (eta >= 0) {
        char x[24];

        progress_fmt_duration(x, sizeof(x), eta);
        snprintf(e, sizeof(e), ", ETA %s", x);
    }
    if (ft == 0)
        snprintf(buf, len, "%s: preparing, %s on the wire", name, w);
    else
        snprintf(buf, len, "%s: %llu/%llu files, %s / %s, %s on the wire at %s%s", name,
                 (unsigned long long)fd, (unsigned long long)ft, d, t, w, r, e);
}

void board_fmt_row(char *buf, size_t len, const struct board_row *r)
{
    fmt_line(buf, len, cli_esc(r->server), r->files_done, r->files_total, r->bytes_done,
             r->bytes_total, r->wire, r->rate);
}

static int row_active(const struct board_row *r)
{
    return r->last_seen >= 0;
}

/* Moves the cursor up to the board's first line and erases it all. */
static void erase(struct board *b)
{
    if (b->drawn > 1)
        fprintf(b->f, "\r\033[%uA", b->drawn - 1);
    fputs("\r\033[J", b->f);
    b->drawn = 0;
}

static void draw(struct board *b)
{
    char line[512];
    uint64_t fd = 0, ft = 0, bd = 0, bt = 0, w = 0;
    double rate = 0;
    unsigned shown = 0, active = 0;

    erase(b);
    for (size_t i = 0; i < b->nrows; i++) {
        const struct board_row *r = &b->rows[i];

        fd += r->files_done;
        ft += r->files_total;
        bd += r->bytes_done;
        bt += r->bytes_total;
        w += r->wire;
        if (!row_active(r))
            continue;
        rate += r->rate;
        active++;
        if (shown >= b->max_lines)
            continue;
        board_fmt_row(line, sizeof(line), r);
        fprintf(b->f, "%s\n", line);
        shown++;
    }
    if (active > shown) {
        fprintf(b->f, "(%u more servers active)\n", active - shown);
        shown++;
    }
    fmt_line(line, sizeof(line), "total", fd, ft, bd, bt, w, rate);
    fprintf(b->f, "%s [%u active, %zu seen]", line, active, b->nrows);
    fflush(b->f);
    b->drawn = shown + 1;
}

void board_update(struct board *b, const ds_sync_progress_t *p, int64_t now, int force)
{
    struct board_row *r = row_of(b, p->server, now);

    if (r == NULL)
        return;
    /* a server's first line and its plan are drawn at once, however fast
     * it ends */
    force |= r->last_seen == 0 || (r->files_total == 0 && p->files_total > 0);
    r->files_done = p->files_done;
    r->files_total = p->files_total;
    r->bytes_done = p->bytes_done;
    r->bytes_total = p->bytes_total;
    r->wire = p->bytes_wire;
    r->last_seen = p->finished ? -1 : now;
    sample(r, now);
    if (!b->enabled || (!force && now - b->last_draw < REDRAW_NS))
        return;
    b->last_draw = now;
    draw(b);
}

void board_clear(struct board *b)
{
    if (!b->enabled || b->drawn == 0)
        return;
    erase(b);
    fflush(b->f);
}
