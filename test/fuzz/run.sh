#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz_model.c) over the model parser and
# evaluator: src/modelparse.c and src/modeleval.c as they are (they need no
# server, so nothing is stubbed), with AddressSanitizer and UBSan.  Replays
# the saved regressions, then fuzzes each target for FUZZ_SECONDS (default 60).  A crash is saved in
# test/fuzz/regressions/<target>-<hash>, replayed by every later run, and fails
# the run.  `make fuzz` runs this.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
seconds=${FUZZ_SECONDS:-60}
CC=${FUZZ_CC:-clang}
build=$top/test/fuzz/build
mkdir -p "$build"

status=0
for target in ubj model; do
    T=$(tr a-z A-Z <<<"$target")
    bin=$build/fuzz_$target
    "$CC" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -DFUZZ_$T -Wall -Wmissing-prototypes -Isrc \
        test/fuzz/fuzz_model.c src/modelparse.c src/modeleval.c -ljansson -lm -o "$bin"

    # earlier findings first: each must now be handled
    for r in test/fuzz/regressions/"$target"-*; do
        [ -e "$r" ] || continue
        if ! "$bin" "$r" >"$build/replay.log" 2>&1; then
            echo "fuzz $target: regression $r fails again"; tail -30 "$build/replay.log"; status=1
        fi
    done

    corpus=$build/corpus_$target
    mkdir -p "$corpus"
    cp test/fuzz/corpus/* "$corpus/"
    echo "== fuzz $target: $seconds s"
    if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$bin" "$corpus" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=1024 \
                 -artifact_prefix="$build/$target-" -print_final_stats=1 >"$build/$target.log" 2>&1; then
        status=1
        for a in "$build/$target"-*; do
            [ -e "$a" ] || continue
            dest=test/fuzz/regressions/$target-$(sha1sum "$a" | cut -c1-12)
            cp "$a" "$dest"
            echo "fuzz $target: finding saved as $dest"
        done
        grep -E "ERROR|SUMMARY" "$build/$target.log" | head -20
    fi
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$build/$target.log" | sed "s/^/fuzz $target: /"
    grep -E "^#[0-9]+ +DONE" "$build/$target.log" | sed "s/^/fuzz $target: /" || true
done
[ $status -eq 0 ] && echo "fuzz: no findings"
exit $status
