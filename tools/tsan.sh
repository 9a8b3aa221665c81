#!/bin/sh
# ThreadSanitizer: the C suite (its 4-thread stress, racing Enters,
# cross-thread copies and releases, thread exit) built with
# -fsanitize=thread and linked against the static library built with
# -Zsanitizer=thread, so the Rust side's atomics, locks and plain accesses
# are seen too. That needs the nightly toolchain with the rust-src component
# (std is rebuilt instrumented with -Zbuild-std); installed here if missing.
# Without it, TSan would see only the C side, so this script stops instead.
# Usage: tools/tsan.sh  (`make tsan`); 0 reports required, no suppressions.
set -eu

CARGO=${CARGO:-cargo}
CC=${CC:-cc}
OUT=target/tsan
host=$(rustc -vV | sed -n 's/^host: //p')

if ! $CARGO +nightly --version >/dev/null 2>&1; then
    echo "tsan: needs the nightly toolchain (rustup toolchain install nightly)"; exit 1
fi
if [ ! -d "$(rustc +nightly --print sysroot)/lib/rustlib/src/rust/library" ]; then
    echo "tsan: installing rust-src for nightly"
    rustup component add rust-src --toolchain nightly
fi

# --cfg contextvars_tsan: Acquire loads of the count where the library uses
# an Acquire fence, which TSan does not model (object.rs, hamt.rs).
RUSTFLAGS="-Zsanitizer=thread --cfg contextvars_tsan" CARGO_TARGET_DIR=$OUT \
    $CARGO +nightly build --release -Zbuild-std --target "$host" --lib
lib="$OUT/$host/release/libcontextvars.a"
# The TSan runtime is the one rustc ships for -Zsanitizer (LLVM's, as new as
# rustc's instrumentation, which calls entry points such as __tsan_memset
# that GCC's older libtsan lacks); the C side is instrumented by $CC and
# linked against that same runtime.
rt="$(rustc +nightly --print sysroot)/lib/rustlib/$host/lib/librustc-nightly_rt.tsan.a"
mkdir -p "$OUT/obj"
for f in c-tests/*.c; do
    $CC -std=c11 -O1 -g -fsanitize=thread -Wno-tsan -Iinclude -c "$f" -o "$OUT/obj/$(basename "$f" .c).o"
done
$CC "$OUT"/obj/*.o -o "$OUT/c-tests" "$lib" -Wl,--whole-archive "$rt" -Wl,--no-whole-archive \
    -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -lstdc++
# halt_on_error: the first report fails the run; second_deadlock_stack for
# lock-order reports.
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" "$OUT/c-tests"
echo "tsan: the C suite passed under ThreadSanitizer with an instrumented library (0 reports)"
