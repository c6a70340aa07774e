# Helpers shared by the shell test scripts (sourced): a temporary folder
# removed at exit, pass/fail counters and expect CODE WHAT -- COMMAND...
# (runs COMMAND with stdout in $T/out, stderr in $T/err, checks its exit code).
T=$(mktemp -d /tmp/squish-test-XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0 skip=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
expect() {
  local want=$1 what=$2; shift 3
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ "$rc" = "$want" ]; then ok; else bad "$what: exit $rc, want $want; stderr: $(head -c 400 "$T/err")"; fi
}
# need_shared_models [WHY]: end the script as skipped when ../shared's models
# are absent (SH is the shared folder the script was given).
need_shared_models() {
  if [ ! -d "$SH/models" ]; then
    echo "skipped: $SH/models is absent (${1:-the tokenizer and text come from there})"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
  fi
}
