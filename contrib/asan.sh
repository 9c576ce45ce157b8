#!/usr/bin/env bash
# `make asan`: builds the extension with AddressSanitizer and UBSan in a copy
# of the tree (.asan/), installs it into the suite's private installation and
# runs the pg_regress suite against it.  Sanitizer reports are written to
# .asan/reports/; the run fails on any report contrib/asan.supp does not
# suppress, and on any failing test.
#
# How the runtime gets into the server.  The instrumented cscopilot.so needs
# the ASan and UBSan runtimes, which are preloaded (LD_PRELOAD) into pg_regress,
# psql and every server process, and shared_preload_libraries loads the library
# into the postmaster, so every backend and worker runs our code with ASan's
# heap, stack and global checks and UBSan's checks.  A plainly preloaded libasan
# deadlocks on Debian 12: it initialises on the first malloc, which a library
# constructor (libgpg-error's, gnutls's) makes inside bindtextdomain while it
# holds glibc's _nl_state_lock for writing; the runtime's start-up calls
# dlerror, whose gettext takes the same lock for reading from inside that
# write lock and leaves it corrupted, and the next bindtextdomain (the
# server's, psql's) waits on it for ever.  So a shim,
# contrib/asan_first.c linked with -z initfirst, calls __asan_init before any
# other constructor runs.  Leak detection is off: PostgreSQL frees memory by
# resetting memory contexts, and processes exit without freeing them.
# palloc'd memory is still coarse to ASan (a context block is one allocation);
# the fuzz targets (make fuzz) run the model parsers with a memory context shim
# that allocates every chunk apart, and make leakcheck measures growth.
# ASAN_PRELOAD=0 runs without the runtime in the server (UBSan and globals only).
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
# Without the runtime interposed nothing unpoisons the stack redzones that
# ereport's longjmp skips over (false reports in the next frames), so
# ASAN_PRELOAD=0 builds without them; the preloaded runtime intercepts longjmp.
[ "${ASAN_PRELOAD:-1}" = 1 ] || san+=" --param asan-stack=0"
make -s -C "$out/build" CC="$CC" PG_CFLAGS="$san -g -O1" SHLIB_LINK="-lxgboost -ljansson -lm $san" >/dev/null \
    || { echo "asan: build failed"; exit 1; }
runtime=$("$CC" -print-file-name=libasan.so)
ubsan=$("$CC" -print-file-name=libubsan.so)
[ -f "$runtime" ] || { echo "asan: no sanitizer runtime at $runtime"; exit 1; }
first=$out/asan_first.so
"$CC" -shared -fPIC -o "$first" contrib/asan_first.c -Wl,-z,initfirst -Wl,--unresolved-symbols=ignore-all \
    || { echo "asan: building the start-up shim failed"; exit 1; }
chmod 755 "$out" "$first"

supp=$top/contrib/asan.supp
# The heap checks must be live: an uninstrumented program that dlopens an
# instrumented library with a heap overflow, preloaded like the server, has to
# be stopped by an AddressSanitizer report.
if [ "${ASAN_PRELOAD:-1}" = 1 ]; then
    "$CC" $san -g -O0 -shared -fPIC -o "$out/asan_probe.so" contrib/asan_probe.c \
        && "$CC" -DPROBE_MAIN -g -o "$out/asan_probe" contrib/asan_probe.c -ldl \
        || { echo "asan: building the probe failed"; exit 1; }
    env LD_PRELOAD="$runtime:$ubsan:$first" ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=0 \
        "$out/asan_probe" "$out/asan_probe.so" >"$out/probe.log" 2>&1
    grep -q "AddressSanitizer: heap-buffer-overflow" "$out/probe.log" \
        || { echo "asan: the probe's heap overflow went unreported, ASan is not live:"; cat "$out/probe.log"; exit 1; }
    echo "asan: probe ok (a heap overflow in a dlopened library is reported)"
fi
env_str=""
[ "${ASAN_PRELOAD:-1}" = 1 ] && env_str="LD_PRELOAD=$runtime:$ubsan:$first "
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
