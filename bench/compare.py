#!/usr/bin/env python3
"""Runs the CPython and library builds of bench.c side by side and prints:
1. time per operation for every case (best of RUNS runs), ratio library/CPython;
2. thread scaling (1 vs 2 threads) for both;
3. memory per context and build time for 1,000,000 contexts;
4. instructions per operation (callgrind) for the main cases, unless ICOUNT=0.

Usage: compare.py CPYTHON_BINARY LIBRARY_BINARY [RUNS] [ICOUNT]"""
import os
import re
import shutil
import subprocess
import sys

ICOUNT_CASES = ["get_hit", "get_miss_default", "get_rand_1000", "set", "set_reset",
                "copy_10", "copy_current", "enter_exit", "new_decref", "task_step"]


def run(binary, runs):
    best, order = {}, []
    for _ in range(runs):
        out = subprocess.run([binary], check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            if not line.strip():
                continue
            case, value = line.split()
            if case not in best:
                order.append(case)
            best[case] = min(best.get(case, float("inf")), float(value))
    return order, best


def instructions(binary, case, iters):
    """Instructions callgrind counts for a run of `case` repeated `iters` times."""
    # A fixed hash seed: CPython's start-up otherwise varies from run to run.
    env = dict(os.environ, PYTHONHASHSEED="0")
    r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                        binary, "--iters", str(iters), case],
                       check=True, capture_output=True, text=True, env=env)
    m = re.search(r"Collected : (\d+)", r.stderr)
    if not m:
        raise SystemExit(f"compare.py: no callgrind total for {binary} {case}:\n{r.stderr}")
    return int(m.group(1))


def per_op(binary, case):
    # Two run lengths; the difference cancels start-up and set-up.
    a, b = 2000, 12000
    return (instructions(binary, case, b) - instructions(binary, case, a)) / (b - a)


def main():
    cpy_bin, lib_bin = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    icount = (sys.argv[4] if len(sys.argv) > 4 else "1") != "0"
    order, cpy = run(cpy_bin, runs)
    _, lib = run(lib_bin, runs)

    timed = [c for c in order if not c.startswith(("thr_", "mem_"))]
    print(f"{'case':<20}{'CPython ns':>12}{'library ns':>12}{'ratio':>8}")
    for case in timed:
        print(f"{case:<20}{cpy[case]:>12.2f}{lib[case]:>12.2f}{lib[case] / cpy[case]:>8.2f}")
    print("(ns per operation, best of %d runs x 5 repeats; get_rand_N is switch+Get minus"
          " the switch alone)" % runs)

    threads = sorted({c[:-3] for c in order if c.startswith("thr_")})
    if threads:
        print()
        print(f"{'threads case':<20}{'CPython 1t':>11}{'2t':>8}{'scaling':>9}"
              f"{'library 1t':>12}{'2t':>8}{'scaling':>9}")
        for t in threads:
            c1, c2, l1, l2 = cpy[t + "_1t"], cpy[t + "_2t"], lib[t + "_1t"], lib[t + "_2t"]
            print(f"{t:<20}{c1:>11.2f}{c2:>8.2f}{c1 / c2:>9.2f}{l1:>12.2f}{l2:>8.2f}{l1 / l2:>9.2f}")
        print("(aggregate wall-clock ns per operation over all threads; scaling = 1t / 2t)")

    if "mem_bytes_per_ctx" in cpy:
        print()
        print(f"{'memory case':<22}{'CPython':>10}{'library':>10}{'ratio':>8}")
        for case, label in [("mem_bytes_per_ctx", "bytes per context"),
                            ("mem_build_ns_per_ctx", "build ns per context")]:
            print(f"{label:<22}{cpy[case]:>10.1f}{lib[case]:>10.1f}{lib[case] / cpy[case]:>8.2f}")
        print("(1,000,000 live contexts, each a Copy of a 100-variable context with one"
              " variable set to its own new int; resident memory growth)")

    if icount:
        if shutil.which("valgrind") is None:
            print("\n(instruction counts skipped: valgrind not installed)")
            return
        print()
        print(f"{'case':<20}{'CPython instr':>14}{'library instr':>15}{'ratio':>8}")
        for case in ICOUNT_CASES:
            c, l = per_op(cpy_bin, case), per_op(lib_bin, case)
            print(f"{case:<20}{c:>14.1f}{l:>15.1f}{l / c:>8.2f}")
        print("(instructions per operation, callgrind; repeatable run to run)")


main()
