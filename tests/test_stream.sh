#!/usr/bin/env bash
# Output to standard output and streams: the spool file in $TMPDIR never
# outlives the process (reader gone, SIGTERM, SIGKILL), signals ignored by
# the parent stay ignored, and --report - writes the report to stdout.
# usage: test_stream.sh BUILD_DIR SOURCE_DIR
set -u
B=$(cd "$1" && pwd) S=$(cd "$2" && pwd)
Q=$B/squish-quantize
TINY=$S/testdata/tiny-llama
. "$(dirname "$0")/testlib.sh"
mkdir "$T/tmp"
export TMPDIR=$T/tmp
spool_left() { [ -n "$(ls -A "$T/tmp")" ]; }

# the reader goes away: SIGPIPE ends the command (141), nothing stays in $TMPDIR
"$Q" "$TINY" -o - -s int8 -q | head -c 100 >"$T/head"; rc=${PIPESTATUS[0]}
[ "$rc" = 141 ] && [ "$(wc -c <"$T/head")" = 100 ] && ok || bad "| head: exit $rc, want 141"
spool_left && bad "| head left a spool file: $(ls "$T/tmp")" || ok
rm -f "$T"/tmp/*
# SIGPIPE ignored by the parent: the write fails with EPIPE, exit 3, no spool file
rc=$(trap '' PIPE; "$Q" "$TINY" -o - -s int8 -q 2>"$T/err" | head -c 100 >/dev/null; echo "${PIPESTATUS[0]}")
[ "$rc" = 3 ] && grep -q 'Broken pipe' "$T/err" && ok || bad "SIGPIPE ignored: exit $rc, want 3; $(cat "$T/err")"
spool_left && bad "EPIPE left a spool file" || ok
rm -f "$T"/tmp/*

# standard error's reader gone while writing a regular file: no temporary beside it
exec 3> >(:)
wait $! 2>/dev/null
"$Q" "$TINY" -o "$T/p.squizd" -s int8 2>&3; rc=$?
exec 3>&-
[ "$rc" = 141 ] && [ ! -e "$T/p.squizd" ] && ok || bad "stderr reader gone: exit $rc, output exists: $([ -e "$T/p.squizd" ] && echo yes)"
ls "$T" | grep -q squish-tmp && bad "SIGPIPE on stderr left $(ls "$T" | grep squish-tmp)" || ok

# A FIFO output blocks in open() until a reader comes: signals arrive while
# the spool is complete. wait_spool PID: until PID holds its spool file open.
mkfifo "$T/fifo"
wait_spool() {
  for _ in $(seq 300); do
    ls -l "/proc/$1/fd" 2>/dev/null | grep -q squish-stream && return 0
    sleep 0.1
  done
  return 1
}
for sig in TERM INT KILL; do
  "$Q" "$TINY" -o "$T/fifo" -s f32 -q & pid=$!
  wait_spool $pid || bad "$sig: no spool file seen"
  kill -$sig $pid; timeout 30 tail --pid=$pid -f /dev/null; kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null; rc=$?
  [ $rc -gt 128 ] && ok || bad "SIG$sig: exit $rc"
  spool_left && bad "SIG$sig left a spool file: $(ls "$T/tmp")" || ok
  rm -f "$T"/tmp/*
done
# SIGHUP ignored (nohup): the command goes on and completes
(trap '' HUP; exec "$Q" "$TINY" -o "$T/fifo" -s int8 -q) & pid=$!
wait_spool $pid || bad "HUP: no spool file seen"
kill -HUP $pid
timeout 30 cat "$T/fifo" >"$T/hup.squizd"; wait $pid; rc=$?
"$Q" "$TINY" -o "$T/ref.squizd" -s int8 -q
[ "$rc" = 0 ] && cmp -s "$T/hup.squizd" "$T/ref.squizd" && ok || bad "SIGHUP ignored by the parent: exit $rc"

# SIGINT while squish-verify writes its --ref-logits cache: no temporary left
V=$B/squish-verify
"$Q" "$TINY" -o "$T/v.squizd" -s int4 -q
awk 'BEGIN { for (i = 1; i <= 20000; i++) print (i * 37 + 11) % 512 }' >"$T/ids"
"$V" -q --eval-ids "$T/ids" --ctx 64 --reference "$TINY" --ref-logits "$T/ref.lp" "$T/v.squizd" & pid=$!
for _ in $(seq 300); do ls "$T" | grep -q '^ref.lp.squish-tmp-' && break; sleep 0.1; done
kill -INT $pid; wait $pid; rc=$?
[ $rc -gt 128 ] && [ ! -e "$T/ref.lp" ] && ok || bad "SIGINT during --ref-logits: exit $rc"
ls "$T" | grep -q '^ref.lp.squish-tmp-' && bad "SIGINT left the reference cache's temporary file" || ok

# --report -: the report on stdout, not a file named '-'
cd "$T" || exit 1
expect 0 "report to stdout" -- "$Q" "$TINY" -o "$T/r.squizd" -s int4 -q --report -
[ -s "$T/out" ] && jq -e '.schema == "squish-quantize-report/1" and (.tensors | length) == 21' "$T/out" >/dev/null && ok || bad "--report - did not write the report to stdout"
[ ! -e "$T/-" ] && ok || bad "--report - created a file named '-'"
expect 2 "-o - with --report -" -- "$Q" "$TINY" -o - -s int4 -q --report -
[ ! -s "$T/out" ] && ok || bad "-o - --report - wrote to stdout"

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
