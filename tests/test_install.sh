#!/usr/bin/env bash
# The installed tree is usable on its own: cmake --install into a temporary
# prefix, then a small C program built with only `pkg-config --cflags --libs
# squish` against it (shared, and static when libsquish.a is installed) opens
# a .squizd file and prints its tensor count; squish.pc points into the
# prefix; <squish/squish.h> pulls in the whole API with the version macros.
# usage: test_install.sh BUILD_DIR SOURCE_DIR CC CMAKE [EXTRA_CFLAGS]
# (EXTRA_CFLAGS: the sanitizer flags of a sanitizer build, which the program
# must share to load the instrumented library).
set -u
B=$(cd "$1" && pwd) S=$(cd "$2" && pwd) CC=$3 CMAKE=$4 EXTRA=${5:-}
. "$(dirname "$0")/testlib.sh"
P=$T/prefix
"$CMAKE" --install "$B" --prefix "$P" >"$T/install.log" 2>&1 && ok || bad "cmake --install: $(tail -3 "$T/install.log")"
pc=$(find "$P" -name squish.pc)
[ -n "$pc" ] || { bad "no squish.pc installed"; echo "$pass passed, $fail failed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")  # searched before the system's .pc files

# squish.pc names the prefix installed into, not the configured one
[ "$(pkg-config --variable=prefix squish)" = "$P" ] && ok || bad "squish.pc prefix is $(pkg-config --variable=prefix squish), want $P"
libdir=$(pkg-config --variable=libdir squish)
case "$libdir" in "$P"/*) ok ;; *) bad "squish.pc libdir $libdir is outside $P" ;; esac
pkg-config --cflags squish | grep -q -- "-I$P/" && ok || bad "cflags $(pkg-config --cflags squish) do not point into $P"
version=$("$B/squish-inspect" --version | awk '{print $2}')
[ "$(pkg-config --modversion squish)" = "$version" ] && ok || bad "squish.pc version $(pkg-config --modversion squish), tools $version"

# the umbrella header and the version macros, installed; no template beside them
[ -f "$P/include/squish/squish.h" ] && [ -f "$P/include/squish/version.h" ] && ok || bad "squish/squish.h or squish/version.h not installed"
ls "$P/include/squish" | grep -q '\.in$' && bad "a header template was installed" || ok
grep -q "#define SQUISH_VERSION_STRING \"$version\"" "$P/include/squish/version.h" && ok || bad "version.h does not say $version"

want=$("$B/squish-inspect" --json "$S/testdata/toy.squizd" | jq '.header.n_tensors')
prog=$S/tests/install/count_tensors.c
# shared: -lsquish finds libsquish.so first
# shellcheck disable=SC2046,SC2086
if "$CC" -std=c11 -Wall -Wextra -Werror -pedantic $EXTRA "$prog" -o "$T/count-shared" $(pkg-config --cflags --libs squish) \
  -Wl,-rpath,"$libdir" 2>"$T/cc.err"; then
  ok
  expect 0 "installed program (shared)" -- "$T/count-shared" "$S/testdata/toy.squizd"
  [ "$(cat "$T/out")" = "$want tensors (squish $version)" ] && ok || bad "shared program printed '$(cat "$T/out")', want $want tensors"
  ldd "$T/count-shared" | grep -q "libsquish.so.* => $P/" && ok || bad "the program does not load libsquish from $P"
else
  bad "compiling against the installed tree (shared): $(head -5 "$T/cc.err")"
fi
# static: libsquish.a with the libraries squish.pc says it needs (Requires.private
# and Libs.private; their own private dependencies stay shared)
if [ -f "$libdir/libsquish.a" ]; then
  # shellcheck disable=SC2046,SC2086
  if "$CC" -std=c11 -Wall -Wextra -Werror -pedantic $EXTRA "$prog" -o "$T/count-static" $(pkg-config --cflags squish) \
    "$libdir/libsquish.a" $(pkg-config --libs $(pkg-config --print-requires-private squish)) \
    $(sed -n 's/^Libs.private: //p' "$pc") 2>"$T/cc.err"; then
    ok
    expect 0 "installed program (static)" -- "$T/count-static" "$S/testdata/toy.squizd"
    [ "$(cat "$T/out")" = "$want tensors (squish $version)" ] && ok || bad "static program printed '$(cat "$T/out")'"
    ldd "$T/count-static" | grep -q libsquish && bad "the static program loads libsquish.so" || ok
  else
    bad "compiling against the installed tree (static): $(head -5 "$T/cc.err")"
  fi
else
  echo "skipped: no libsquish.a installed" >&2
  skip=$((skip + 1))
fi
# the decode library alone: a reader built with only `pkg-config squish-decode`
# decodes every tensor to the same values as the same program on the full
# library, and loads neither libsquish nor libarchive
dpc=$(find "$P" -name squish-decode.pc)
[ -n "$dpc" ] && ok || bad "no squish-decode.pc installed"
dprog=$S/tests/install/decode_sums.c
vec=$S/testdata/squizd-vectors
# shellcheck disable=SC2046,SC2086
if [ -n "$dpc" ] && "$CC" -std=c11 -Wall -Wextra -Werror -pedantic $EXTRA "$dprog" -o "$T/dec-only" \
  $(pkg-config --cflags --libs squish-decode) -Wl,-rpath,"$libdir" 2>"$T/cc.err" &&
  "$CC" -std=c11 -Wall -Wextra -Werror -pedantic $EXTRA "$dprog" -o "$T/dec-full" \
  $(pkg-config --cflags --libs squish) -Wl,-rpath,"$libdir" 2>>"$T/cc.err"; then
  ok
  ldd "$T/dec-only" | grep -q "libsquish-decode.so.* => $P/" && ok || bad "the reader does not load libsquish-decode from $P"
  ldd "$T/dec-only" | grep -Eq "libsquish\.so|libarchive" && bad "the decode-only reader loads libsquish or libarchive" || ok
  n=0
  for f in "$vec"/valid-*.squizd "$S"/testdata/toy.squizd; do
    case "$f" in *-0000[2-9]-of-*) continue ;; esac # later pieces of a split set open through piece 1
    "$T/dec-only" "$f" >"$T/d1" 2>"$T/d1.err" && "$T/dec-full" "$f" >"$T/d2" 2>&1 || { bad "decode_sums $f: $(cat "$T/d1.err")"; continue; }
    cmp -s "$T/d1" "$T/d2" && [ -s "$T/d1" ] && n=$((n + 1)) || bad "decode-only and full library differ on $f"
  done
  [ "$n" -gt 0 ] && ok || bad "no test vector decoded"
else
  bad "compiling against the decode library: $(head -5 "$T/cc.err")"
fi

# the public headers also compile as C++
if command -v c++ >/dev/null; then
  printf '#include <squish/squish.h>\nint main() { return sq_library_version() == SQUISH_VERSION_NUMBER ? 0 : 1; }\n' >"$T/h.cc"
  # shellcheck disable=SC2046
  c++ -std=c++11 -Wall -Wextra -Werror -pedantic -fsyntax-only $(pkg-config --cflags squish) "$T/h.cc" 2>"$T/cc.err" && ok ||
    bad "squish/squish.h in C++: $(head -5 "$T/cc.err")"
fi

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
