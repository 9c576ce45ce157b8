#!/usr/bin/env bash
# `make asan`: builds the extension with AddressSanitizer and UBSan in a copy
# of the tree (.asan/), installs it into the suite's private installation and
# runs the pg_regress suite against it.  Sanitizer reports are written to
# .asan/reports/; the run fails on any report contrib/asan.supp does not
# suppress, and on any failing test.
#
# How the runtime gets into the server.  The instrumented cscopilot.so needs
# libasan, which shared_preload_libraries loads into the postmaster, so every
# backend and worker runs our code instrumented: UBSan checks all of it, ASan
# its accesses to globals (its stack redzones are off: PostgreSQL's ereport
# longjmps over our frames, and only an interposed runtime unpoisons them).  ASan's heap checks need the runtime
# preloaded into the whole server (ASAN_PRELOAD=1 does that), but on Debian 12
# a preloaded libasan deadlocks in glibc's locale locks before the server (or
# psql) gets anywhere (bindtextdomain at start, libp11-kit's destructor at
# exit), so it is off by default.  The fuzz targets (make fuzz) run the model
# parsers with the full runtime and a memory context shim that allocates every
# chunk apart.  palloc'd memory is invisible to ASan either way (a memory
# context is one allocation to it), and leaks are measured by make leakcheck.
# TAP tests are not run: they start servers of their own.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
CC=${ASAN_CC:-gcc}
out=$top/.asan
rm -rf "$out/build" "$out/reports"
mkdir -p "$out/build" "$out/reports"
chmod 777 "$out/reports"
# a copy of the tree, so the instrumented objects never mix with the normal build
tar --exclude=.asan --exclude=.git --exclude=.sec --exclude='*.o' --exclude='*.so' --exclude=test/fuzz/build \
    -cf - . | tar -xf - -C "$out/build"
san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
# No stack redzones: PostgreSQL's ereport longjmps over our frames, and without
# the runtime interposed nothing unpoisons them, which reports false positives
# in the next frames that reuse the stack.
[ "${ASAN_PRELOAD:-0}" = 1 ] || san+=" --param asan-stack=0"
make -s -C "$out/build" CC="$CC" PG_CFLAGS="$san -g -O1" SHLIB_LINK="-lxgboost -ljansson -lm $san" >/dev/null \
    || { echo "asan: build failed"; exit 1; }
runtime=$("$CC" -print-file-name=libasan.so)
ubsan=$("$CC" -print-file-name=libubsan.so)
[ -f "$runtime" ] || { echo "asan: no sanitizer runtime at $runtime"; exit 1; }

supp=$top/contrib/asan.supp
env_str=""
[ "${ASAN_PRELOAD:-0}" = 1 ] && env_str="LD_PRELOAD=$runtime:$ubsan "
env_str+="ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0:abort_on_error=0:halt_on_error=0:log_path=$out/reports/asan:suppressions=$supp"
env_str+=" UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=0:log_path=$out/reports/ubsan:suppressions=$supp"
(cd "$out/build" && SERVER_ENV="$env_str" TAP=0 bash contrib/run-tests.sh) | tee "$out/suite.log" | tail -4
suite=${PIPESTATUS[0]}

reports=$(grep -lE "ERROR: AddressSanitizer|runtime error:" "$out"/reports/* 2>/dev/null | wc -l)
ours=$(grep -lE "cscopilot\.so|/src/[a-z]+\.c" "$out"/reports/* 2>/dev/null | wc -l)
echo "asan: $reports sanitizer report(s), $ours involving cscopilot; reports in $out/reports"
for f in $(grep -lE "ERROR: AddressSanitizer|runtime error:" "$out"/reports/* 2>/dev/null | head -5); do
    echo "== $f"; head -30 "$f"
done
[ "$suite" -eq 0 ] && [ "$reports" -eq 0 ]
