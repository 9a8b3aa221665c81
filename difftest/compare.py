#!/usr/bin/env python3
"""Runs difftest built against CPython and against the library over the same
seeds and requires byte-identical output. On a mismatch it prints the seed,
the first differing line, and a shrunk reproduction: the fewest calls of that
seed (others generated but skipped) that still make the outputs differ.
Also requires every C-API error message to be reached at least once.

Usage: compare.py CPYTHON_BIN LIBRARY_BIN SEEDS STEPS [FIRST_SEED]"""
import subprocess, sys

cpy, lib = sys.argv[1], sys.argv[2]
seeds, steps = int(sys.argv[3]), int(sys.argv[4])
first = int(sys.argv[5]) if len(sys.argv) > 5 else 1


def run(binary, first_seed, n, steps, skips=None):
    args = [binary, str(first_seed), str(n), str(steps)]
    if skips:
        args.append(",".join(map(str, sorted(skips))))
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{binary} failed with exit code {p.returncode}:\n{p.stderr[-2000:]}")
    return p.stdout, p.stderr


def differs(seed, steps, skips):
    return run(cpy, seed, 1, steps, skips)[0] != run(lib, seed, 1, steps, skips)[0]


out_c, err_c = run(cpy, first, seeds, steps)
out_l, err_l = run(lib, first, seeds, steps)
lines = out_c.count("\n")

if out_c != out_l:
    a, b = out_c.splitlines(), out_l.splitlines()
    i = next(i for i in range(min(len(a), len(b)) + 1) if i >= min(len(a), len(b)) or a[i] != b[i])
    seed = next(int(l.split()[1]) for l in reversed(a[: i + 1]) if l.startswith("seed "))
    print(f"MISMATCH at seed {seed}, output line {i + 1}:")
    print(f"  CPython: {a[i] if i < len(a) else '(end)'}")
    print(f"  library: {b[i] if i < len(b) else '(end)'}")
    # The step number is the line's first field.
    step = int(a[i].split()[0]) if i < len(a) and a[i].split()[0].isdigit() else steps - 1
    n = step + 1
    keep = list(range(n))
    chunk = max(1, len(keep) // 2)
    while chunk >= 1:  # greedy delta debugging: drop chunks that keep the mismatch
        j = 0
        while j < len(keep):
            trial = keep[:j] + keep[j + chunk:]
            if trial and differs(seed, n, set(range(n)) - set(trial)):
                keep = trial
            else:
                j += chunk
        chunk //= 2
    skips = set(range(n)) - set(keep)
    print(f"shrunk to {len(keep)} of {n} calls; reproduce with:")
    print(f"  {cpy} {seed} 1 {n} {','.join(map(str, sorted(skips))) or '-'}")
    print(f"  {lib} {seed} 1 {n} {','.join(map(str, sorted(skips))) or '-'}")
    rc, rl = run(cpy, seed, 1, n, skips)[0].splitlines(), run(lib, seed, 1, n, skips)[0].splitlines()
    print("CPython:"), [print("  " + l) for l in rc]
    print("library:"), [print("  " + l) for l in rl]
    sys.exit(1)

missing = []
for line in err_l.splitlines():
    if line.startswith("coverage "):
        _, hits, msg = line.split(" ", 2)
        if int(hits) == 0:
            missing.append(msg)
print(f"difftest: {seeds} seeds x {steps} steps, {lines} lines, CPython and library byte-identical")
print("difftest: error messages reached: " + "; ".join(
    f"{l.split(' ', 2)[2]!r} x{l.split()[1]}" for l in err_l.splitlines() if l.startswith("coverage ")))
if missing:
    print("difftest: never reached: " + "; ".join(missing))
    sys.exit(1)
