#!/bin/sh
# Line coverage of the Rust crate (src/) under the Rust tests (unit, corpus
# replay, OOM sweep, panics), the C suite and 100 difftest seeds against the
# instrumented shared library: rustc's -C instrument-coverage, then the llvm-profdata/llvm-cov
# of the toolchain's llvm-tools component (their LLVM matches rustc's).
# Usage: tools/coverage.sh  (from the repository root; `make coverage`)
# Prints the per-file table and `coverage: NN.NN% of lines`; the HTML report
# is in target/coverage/html/index.html.
set -eu

CARGO=${CARGO:-cargo}
CC=${CC:-cc}
OUT=target/coverage
PROF=$OUT/prof
rm -rf "$PROF" "$OUT/html"
mkdir -p "$PROF"

sysroot=$(rustc --print sysroot)
host=$(rustc -vV | sed -n 's/^host: //p')
tools="$sysroot/lib/rustlib/$host/bin"
if [ ! -x "$tools/llvm-profdata" ]; then
    echo "coverage: installing the llvm-tools component"
    rustup component add llvm-tools-preview
fi

export CARGO_TARGET_DIR="$OUT/target"
export RUSTFLAGS="-C instrument-coverage"
LLVM_PROFILE_FILE="$(pwd)/$PROF/%p-%m.profraw"
export LLVM_PROFILE_FILE

# The Rust tests, everything with the `testing` feature (the OOM sweep and
# the panic tests need it), so every binary has the same build of each
# function and their counts add up; one test at a time (the injector is
# process-wide). Every test binary is remembered for llvm-cov.
$CARGO test --release --locked --features testing --no-run --message-format=json |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' > "$OUT/bins.txt"
test -s "$OUT/bins.txt" || { echo "coverage: no test binaries found"; exit 1; }
$CARGO test --release --locked --features testing -- --test-threads=1
objects=""
for b in $(cat "$OUT/bins.txt"); do objects="$objects -object $b"; done

# The C suite against the instrumented shared library.
$CARGO build --release --locked --features testing
lib="$CARGO_TARGET_DIR/release/libcontextvars.so"
ln -sf libcontextvars.so "$CARGO_TARGET_DIR/release/libcontextvars.so.0.1"
$CC -std=c11 -O1 -g -Iinclude c-tests/*.c -o "$OUT/c-tests" -L"$CARGO_TARGET_DIR/release" -lcontextvars \
    -Wl,-rpath,"$(pwd)/$CARGO_TARGET_DIR/release" -lpthread
"$OUT/c-tests" > "$OUT/c-tests.log"
tail -n 1 "$OUT/c-tests.log"
# The differential test's random call sequences (its output is compared
# with CPython's by `make difftest`; here only what it reaches counts).
$CC -std=c11 -O1 -g -Iinclude difftest/difftest.c -o "$OUT/difftest" -L"$CARGO_TARGET_DIR/release" -lcontextvars \
    -Wl,-rpath,"$(pwd)/$CARGO_TARGET_DIR/release" -lpthread
"$OUT/difftest" 0 100 300 > /dev/null 2>&1
# The library first: where a function's build differs between binaries
# (llvm-cov's "mismatched data": the cfg(test) build of the crate), llvm-cov
# keeps the counts of the first object that has it, and the exports are
# exercised through the library.
objects="-object $lib $objects"

"$tools/llvm-profdata" merge -sparse "$PROF"/*.profraw -o "$OUT/merged.profdata"
ignore='(\.cargo/registry|/rustc/|/library/|tests/|fuzz/)'
# The first object is given positionally, the others with -object.
first=$(echo $objects | awk '{print $2}')
rest=$(echo $objects | cut -d' ' -f3-)
"$tools/llvm-cov" report --instr-profile="$OUT/merged.profdata" --ignore-filename-regex="$ignore" \
    "$first" $rest > "$OUT/report.txt"
"$tools/llvm-cov" show --format=html --output-dir="$OUT/html" --instr-profile="$OUT/merged.profdata" \
    --ignore-filename-regex="$ignore" "$first" $rest > /dev/null
cat "$OUT/report.txt"
# TOTAL line: Regions Missed Cover Functions Missed Executed Lines Missed Cover ...
awk '/^TOTAL/ { print "coverage: " $10 " of lines (" $8 - $9 " of " $8 "), " $4 " of regions, " $7 " of functions" }' "$OUT/report.txt"
"$tools/llvm-cov" export --format=lcov --instr-profile="$OUT/merged.profdata" --ignore-filename-regex="$ignore" \
    "$first" $rest > "$OUT/lcov.info"
python3 tools/coverage_summary.py "$OUT/lcov.info"
