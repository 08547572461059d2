#!/usr/bin/env python3
"""Independent oracle for distsync schedule rules, built on the standard
library only (datetime + zoneinfo, which reads the system tzdata).

usage: schedule_oracle.py RULE ZONE FROM_RFC3339 COUNT
Prints a JSON array of the next COUNT fire times, RFC 3339 with the local
offset, exactly as `distsync schedule next --json` is specified to.

Semantics implemented here, independently of src/schedule/schedule.c:
- a wall time in a DST gap fires at the first valid instant after it (the
  transition itself), found by bisection on UTC seconds;
- a repeated wall time fires at its first occurrence (fold=0);
- "+N days" adds calendar days to the Nth weekday, rolling over months.
"""
import json
import re
import sys
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]  # Python weekday()
ORD = {"first": 1, "second": 2, "third": 3, "fourth": 4,
       "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "last": -1}


def day_index(word):
    return DAYS.index(word.lower()[:3])


def first_instant(d, hm, zone):
    """The first UTC instant whose local wall time is >= d + hm."""
    naive = datetime.combine(d, hm)
    cands = []
    for fold in (0, 1):
        u = naive.replace(tzinfo=zone, fold=fold).astimezone(timezone.utc)
        if u.astimezone(zone).replace(tzinfo=None) == naive:
            cands.append(u)
    if cands:
        return min(cands)
    a = naive.replace(tzinfo=zone, fold=0).astimezone(timezone.utc)
    b = naive.replace(tzinfo=zone, fold=1).astimezone(timezone.utc)
    lo, hi = int(min(a, b).timestamp()), int(max(a, b).timestamp())
    off_hi = datetime.fromtimestamp(hi, zone).utcoffset()
    while hi - lo > 1:  # smallest second with the post-gap offset
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == off_hi:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, timezone.utc)


def months_from(y, m):
    while True:
        yield y, m
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)


def month_days(y, m):
    nxt = date(y + 1, 1, 1) if m == 12 else date(y, m + 1, 1)
    return (nxt - date(y, m, 1)).days


def fire_dates(rule, start):
    """Yields the fire dates of rule in order, starting near `start`."""
    w = rule.split()
    kind = w[0].lower()
    if kind == "once":
        yield date.fromisoformat(w[1])
        return
    if kind in ("daily", "weekly"):
        wanted = set(range(7))
        if kind == "weekly":
            wanted = {day_index(x) for x in " ".join(w[1:-1]).replace(",", " ").split()}
        d = start - timedelta(days=3)
        while True:
            if d.weekday() in wanted:
                yield d
            d += timedelta(days=1)
    # monthly
    first = date(start.year, start.month, 1) - timedelta(days=100)
    for y, m in months_from(first.year, first.month):
        n = month_days(y, m)
        if w[1].lower() == "day":
            if int(w[2]) <= n:
                yield date(y, m, int(w[2]))
        elif w[1].lower() == "last" and w[2].lower() == "day":
            yield date(y, m, n)
        else:
            wd = day_index(w[2])
            hits = [date(y, m, k) for k in range(1, n + 1) if date(y, m, k).weekday() == wd]
            anchor = hits[ORD[w[1].lower()] - 1] if ORD[w[1].lower()] > 0 else hits[-1]
            delay = int(w[3][1:]) if len(w) > 4 and w[3].startswith("+") else 0
            yield anchor + timedelta(days=delay)


def main():
    rule, zone_name, frm, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    zone = ZoneInfo(zone_name)
    t0 = datetime.fromisoformat(frm.replace("Z", "+00:00"))
    hh, mm = (int(x) for x in re.search(r"(\d{1,2}):(\d{2})$", rule).groups())
    out = []
    for d in fire_dates(rule, t0.astimezone(zone).date()):
        u = first_instant(d, time(hh, mm), zone)
        if u > t0 and (not out or u > out[-1]):
            out.append(u)
        if len(out) == count:
            break
    print(json.dumps([u.astimezone(zone).isoformat() for u in out], separators=(",", ":")))


if __name__ == "__main__":
    main()
