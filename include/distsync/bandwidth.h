/*
 * Bandwidth caps: the text of a `bandwidth =` key, and what it says at an
 * instant. Pure: text and time in, values out; nothing here reads the clock.
 *
 * A cap is a table: a default rate, then windows that override it.
 *
 *   20Mbit; Mon-Fri 08:00-18:00 512kbit; Fri 22:00-06:00 200Mbit; Sun off
 *
 * Rates are per second and always carry a unit. Bit units are 1000-based
 * (bit, kbit, Mbit, Gbit, Tbit); byte units are kB = 10^3, MB = 10^6,
 * GB = 10^9 bytes and KiB = 2^10, MiB = 2^20, GiB = 2^30 bytes. An optional
 * "/s" may follow the unit. "off" is no cap; "0" pauses (nothing is sent).
 * Rates are kept in bits per second, rounded to the nearest bit.
 *
 * A window is "[DAYS] [HH:MM-HH:MM] RATE": DAYS a day (Mon..Sun), a range
 * (Mon-Fri, Fri-Mon wraps) or a comma list of those; no days means every
 * day, no times means the whole day. A window whose end is not after its
 * start (22:00-06:00) crosses midnight and runs into the next day; its days
 * name the days it starts on. Windows may not overlap (an error naming
 * both). When the table has no default, the default is "off".
 *
 * Windows are wall-clock times in a zone. An edge (a start or an end) takes
 * effect at the first instant the clock shows that time: an edge in a
 * skipped hour (spring forward) takes effect when the clock jumps, so a
 * window lying wholly in the skipped hour does not run that day; an edge in
 * a repeated hour (autumn fold) takes effect at its first occurrence only.
 */
#ifndef DISTSYNC_BANDWIDTH_H
#define DISTSYNC_BANDWIDTH_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/tz.h"
#include "distsync/error.h"

#define DS_BW_OFF         UINT64_MAX        /* no cap */
#define DS_BW_PAUSED      0u                /* nothing is sent */
#define DS_BW_MIN         1000u             /* smallest cap other than 0: 1 kbit/s */
#define DS_BW_MAX         10000000000000ull /* largest cap: 10 Tbit/s */
#define DS_BW_MAX_WINDOWS 32
#define DS_BW_TEXT_MAX    1024      /* longest table text accepted */
#define DS_BW_NEVER       INT64_MAX /* "the rate never changes" */

typedef struct ds_bw_window {
    uint8_t days;   /* bit d: starts on weekday d (0 = Sunday .. 6 = Saturday) */
    uint16_t start; /* minutes after local midnight, 0..1439 */
    uint16_t end;   /* 1..1440; end <= start: crosses midnight */
    uint64_t bps;   /* bits per second, DS_BW_OFF or DS_BW_PAUSED */
} ds_bw_window_t;

typedef struct ds_bw_table {
    uint64_t dflt; /* rate outside every window */
    size_t n;      /* windows in w, in the order written */
    ds_bw_window_t w[DS_BW_MAX_WINDOWS];
} ds_bw_table_t;

/* Sets t to "no cap at any time". */
void ds_bw_table_off(ds_bw_table_t *t);

/*
 * Parses one rate ("512kbit", "1.5MiB", "off", "0") into *bps. Returns 0,
 * or DS_ECONFIG with a message (naming the word, without location) in msg.
 */
DS_MUST_CHECK int ds_bw_parse_rate(const char *s, uint64_t *bps, char *msg, size_t msglen);

/*
 * Parses a table (see above) into *out. Returns 0, or DS_ECONFIG with a
 * message in msg naming the entry at fault (both windows for an overlap).
 */
DS_MUST_CHECK int ds_bw_parse(const char *text, ds_bw_table_t *out, char *msg, size_t msglen);

/* Formats bps as canonical text that parses back to it ("512kbit",
 * "12.582912Mbit", "off", "0"). Returns 0 or DS_ETOOBIG when len < 32. */
DS_MUST_CHECK int ds_bw_format_rate(uint64_t bps, char *buf, size_t len);

/* Formats window w without its rate ("Mon-Fri 08:00-18:00", "Sat-Sun").
 * Returns 0 or DS_ETOOBIG (len of 64 is always enough). */
DS_MUST_CHECK int ds_bw_format_window(const ds_bw_window_t *w, char *buf, size_t len);

/* Formats table t as canonical text that parses back to an equal table.
 * Returns 0 or DS_ETOOBIG (DS_BW_TEXT_MAX * 2 is always enough). */
DS_MUST_CHECK int ds_bw_format(const ds_bw_table_t *t, char *buf, size_t len);

/*
 * The rate of table t at instant now (seconds since the epoch) with the
 * windows read in zone tz, into *bps; and into *next (may be NULL) the first
 * instant after now at which the rate differs, or DS_BW_NEVER. Returns 0,
 * or DS_ERANGE when now is too close to the zone's supported years.
 */
DS_MUST_CHECK int ds_bw_rate_at(const ds_bw_table_t *t, const ds_tz_t *tz, int64_t now,
                                uint64_t *bps, int64_t *next);

#endif
