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
