#!/usr/bin/env bash
# Cross-checks `distsync schedule next --json` against two independent
# oracles: systemd's calendar engine (systemd-analyze calendar) for plain
# Nth-weekday, weekly and daily rules away from DST gaps, and a Python
# zoneinfo script (schedule_oracle.py) for delays, gaps, folds, last
# weekdays, month days and once. Each case compares N fire times exactly.
# A missing tool skips its half (prints "skipped: ..." and passes).
set -euo pipefail
: "${DISTSYNC:?path of the distsync CLI}" "${DS_SRC:?source root}"
oracle="$DS_SRC/tests/func/schedule_oracle.py"
fails=0 compared=0 cases=0

fail() {
  echo "FAIL: $*" >&2
  fails=$((fails + 1))
}

# ---- Python zoneinfo oracle: rule | zone | from | count ---------------------
py_cases=(
  "monthly second tuesday +4 days 02:00|Europe/Paris|2024-01-01T00:00:00Z|48"
  "monthly second tuesday +4 days 02:00|America/New_York|2024-01-01T00:00:00Z|48"
  "monthly second tuesday +4 days 02:00|Asia/Tokyo|2024-01-01T00:00:00Z|48"
  "monthly second tuesday +17 days 02:00|Europe/Paris|2024-01-01T00:00:00Z|48"
  "monthly second tuesday +31 days 02:00|Europe/Paris|2024-01-01T00:00:00Z|48"
  "monthly 2nd tue +20 days 23:30|America/New_York|2030-01-01T00:00:00Z|48"
  "monthly second tuesday +4 days 02:00|Europe/Paris|2036-01-01T00:00:00Z|48"
  "monthly last friday 23:30|Australia/Lord_Howe|2024-01-01T00:00:00Z|48"
  "monthly last friday 23:30|Europe/Paris|2024-01-01T00:00:00Z|48"
  "monthly last friday +31 days 12:00|UTC|2024-01-01T00:00:00Z|48"
  "monthly last sunday 02:30|Europe/Paris|2024-01-01T00:00:00Z|48"
  "monthly second sunday 02:30|America/New_York|2024-01-01T00:00:00Z|48"
  "monthly first sunday 01:30|America/New_York|2024-01-01T00:00:00Z|48"
  "monthly first sunday 02:15|Australia/Lord_Howe|2024-01-01T00:00:00Z|48"
  "monthly first sunday 01:45|Australia/Lord_Howe|2024-01-01T00:00:00Z|48"
  "monthly fourth thursday +3 days 06:00|Asia/Tokyo|2038-01-01T00:00:00Z|48"
  "monthly day 31 02:00|America/New_York|2024-01-01T00:00:00Z|48"
  "monthly day 29 02:00|UTC|2024-01-01T00:00:00Z|48"
  "monthly day 15 02:00|Europe/Paris|2039-01-01T00:00:00Z|24"
  "monthly last day 22:00|Europe/Paris|2024-01-01T00:00:00Z|48"
  "daily 02:30|Europe/Paris|2026-03-20T00:00:00Z|48"
  "daily 02:30|Europe/Paris|2026-10-20T00:00:00Z|24"
  "daily 02:30|America/New_York|2026-03-01T00:00:00Z|48"
  "daily 01:30|America/New_York|2026-10-25T00:00:00Z|24"
  "daily 02:15|Australia/Lord_Howe|2026-09-25T00:00:00Z|24"
  "daily 01:45|Australia/Lord_Howe|2026-03-25T00:00:00Z|24"
  "weekly sun 02:30|Europe/Paris|2024-01-01T00:00:00Z|120"
  "weekly sat,sun 01:30|America/New_York|2040-01-01T00:00:00Z|48"
  "weekly mon,thu 02:00|Asia/Tokyo|2024-01-01T00:00:00Z|48"
  "once 2026-03-29 02:30|Europe/Paris|2026-01-01T00:00:00Z|1"
  "once 2026-10-25 02:30|Europe/Paris|2026-01-01T00:00:00Z|1"
)

if command -v python3 >/dev/null && python3 -c 'import zoneinfo' 2>/dev/null; then
  for c in "${py_cases[@]}"; do
    IFS='|' read -r rule zone from count <<<"$c"
    got=$("$DISTSYNC" schedule next --rule "$rule" --tz "$zone" --from "$from" --count "$count" --json) ||
      { fail "distsync exit $? for '$rule' $zone"; continue; }
    want=$(python3 "$oracle" "$rule" "$zone" "$from" "$count")
    n=$(tr ',' '\n' <<<"$got" | grep -c '"')
    cases=$((cases + 1))
    compared=$((compared + n))
    if [ "$got" != "$want" ]; then
      fail "'$rule' $zone from $from"
      diff <(tr ',' '\n' <<<"$got") <(tr ',' '\n' <<<"$want") | head -10 >&2 || true
    elif [ "$n" != "$count" ]; then
      fail "'$rule' $zone: $n fire times, expected $count"
    fi
  done
  echo "zoneinfo oracle: $cases cases, $compared fire times compared"
else
  echo "skipped: no python3 zoneinfo"
fi

# ---- systemd calendar oracle: rule | OnCalendar spec | zone -----------------
sd_cases=(
  "monthly first monday 02:00|Mon *-*-01..07 02:00:00|Europe/Paris"
  "monthly second tuesday 02:00|Tue *-*-08..14 02:00:00|Europe/Paris"
  "monthly second tuesday 02:00|Tue *-*-08..14 02:00:00|America/New_York"
  "monthly second tuesday 02:00|Tue *-*-08..14 02:00:00|Australia/Lord_Howe"
  "monthly third wednesday 23:30|Wed *-*-15..21 23:30:00|Asia/Tokyo"
  "monthly fourth friday 12:00|Fri *-*-22..28 12:00:00|UTC"
  "monthly last friday 23:30|Fri *-*~07/1 23:30:00|Europe/Paris"
  "weekly mon,thu 02:00|Mon,Thu *-*-* 02:00:00|America/New_York"
  "daily 12:00|*-*-* 12:00:00|Australia/Lord_Howe"
)
sd_count=48
sd_from=2024-01-01T00:00:00Z

if command -v systemd-analyze >/dev/null &&
  systemd-analyze calendar --iterations=1 --base-time=@0 '*-*-* 00:00:00 UTC' >/dev/null 2>&1; then
  sd_cmp=0
  for c in "${sd_cases[@]}"; do
    IFS='|' read -r rule spec zone <<<"$c"
    got=$("$DISTSYNC" schedule next --rule "$rule" --tz "$zone" --from "$sd_from" \
      --count "$sd_count" | date -u -f - +%s)
    want=$(TZ=UTC systemd-analyze calendar --iterations="$sd_count" \
      --base-time="@$(date -u -d "$sd_from" +%s)" "$spec $zone" |
      sed -n 's/.*\(Next elapse\|Iter\. #[0-9]*\): [A-Za-z]* \(.*\)$/\2/p' |
      date -u -f - +%s)
    n=$(wc -l <<<"$got")
    cases=$((cases + 1))
    sd_cmp=$((sd_cmp + n))
    if [ "$got" != "$want" ] || [ "$n" != "$sd_count" ]; then
      fail "systemd '$spec $zone' vs '$rule'"
      diff <(echo "$got") <(echo "$want") | head -6 >&2 || true
    fi
  done
  compared=$((compared + sd_cmp))
  echo "systemd oracle: ${#sd_cases[@]} cases, $sd_cmp fire times compared"
else
  echo "skipped: no systemd-analyze"
fi

# ---- CLI contract: a bad rule exits 2 and names the word ----------------------
for c in "monthly second tuesdya 02:00|'tuesdya'" "monthly first mon +40 days 02:00|+40 days" \
  "daily 02:00|Europe/Pariss"; do
  IFS='|' read -r rule word <<<"$c"
  zone=UTC
  [ "$word" = Europe/Pariss ] && zone=$word
  rc=0
  msg=$("$DISTSYNC" schedule next --rule "$rule" --tz "$zone" 2>&1 >/dev/null) || rc=$?
  [ "$rc" = 2 ] && grep -qF -- "$word" <<<"$msg" || fail "bad rule '$rule': exit $rc, '$msg'"
done

echo "schedule oracle: $cases cases, $compared fire times, $fails failures"
[ "$fails" -eq 0 ]
