/* Live progress line: items, bytes, smoothed rate, ETA. */
#include <time.h>

#include "progress.h"

#define REDRAW_NS 100000000LL

int64_t progress_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void progress_init(struct progress *p, FILE *f, int enabled, const char *label, int64_t now)
{
    *p = (struct progress){.f = f, .enabled = enabled, .label = label};
    p->t0 = p->last_sample = now;
    p->last_draw = now - REDRAW_NS;
}

void progress_fmt_bytes(char *buf, size_t len, uint64_t bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    int u = 0;

    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
}

void progress_fmt_rate(char *buf, size_t len, double r)
{
    char b[24];

    /* IEC, as every size the CLI prints: "12.3 MiB/s", never MB/s */
    progress_fmt_bytes(b, sizeof(b), r > 0 ? (uint64_t)r : 0);
    snprintf(buf, len, "%.23s/s", b);
}

void progress_fmt_duration(char *buf, size_t len, double s)
{
    unsigned long t;

    if (s < 60) {
        snprintf(buf, len, "%.1f s", s);
        return;
    }
    t = (unsigned long)(s + 0.5);
    if (t < 3600)
        snprintf(buf, len, "%lu:%02lu", t / 60, t % 60);
    else
        snprintf(buf, len, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
}

/* Exponential smoothing over samples at least 100 ms apart. */
static void sample(struct progress *p, int64_t now, uint64_t done)
{
    double dt = (double)(now - p->last_sample) / 1e9;
    double inst;

    if (dt < 0.1)
        return;
    inst = (double)(done - p->last_bytes) / dt;
    p->rate = p->rate == 0 ? inst : 0.7 * p->rate + 0.3 * inst;
    p->last_sample = now;
    p->last_bytes = done;
}

void progress_update(struct progress *p, int64_t now, uint64_t items, const char *items_name,
                     uint64_t done, uint64_t total, int force)
{
    char b[32], t[32], r[32], eta[32] = "";

    if (!p->enabled || (!force && now - p->last_draw < REDRAW_NS))
        return;
    p->last_draw = now;
    sample(p, now, done);
    progress_fmt_bytes(b, sizeof(b), done);
    progress_fmt_rate(r, sizeof(r), p->rate);
    if (total > done && p->rate > 0) {
        char d[24];

        progress_fmt_duration(d, sizeof(d), (double)(total - done) / p->rate);
        snprintf(eta, sizeof(eta), ", ETA %s", d);
    }
    if (total > 0) {
        progress_fmt_bytes(t, sizeof(t), total);
        fprintf(p->f, "\r\033[K%s: %llu %s, %s / %s, %s%s", p->label, (unsigned long long)items,
                items_name, b, t, r, eta);
    } else {
        fprintf(p->f, "\r\033[K%s: %llu %s, %s, %s", p->label, (unsigned long long)items,
                items_name, b, r);
    }
    if (p->note[0] != '\0')
        fprintf(p->f, ", %s", p->note);
    fflush(p->f);
    p->drawn = 1;
}

void progress_clear(struct progress *p)
{
    if (!p->drawn)
        return;
    fputs("\r\033[K", p->f);
    fflush(p->f);
    p->drawn = 0;
}
