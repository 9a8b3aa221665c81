#!/usr/bin/env python3
"""Runs the CPython and library builds of bench.c and prints a table:
case, CPython ns/op, library ns/op, ratio library/CPython.
Usage: compare.py CPYTHON_BINARY LIBRARY_BINARY [RUNS]"""
import subprocess, sys

def run(binary, runs):
    best = {}
    order = []
    for _ in range(runs):
        out = subprocess.run([binary], check=True, capture_output=True, text=True).stdout
        for line in out.split("\n"):
            if not line.strip():
                continue
            case, ns = line.split()
            if case not in best:
                order.append(case)
            best[case] = min(best.get(case, float("inf")), float(ns))
    return order, best

runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
order, cpy = run(sys.argv[1], runs)
_, lib = run(sys.argv[2], runs)
print(f"{'case':<18}{'CPython ns':>12}{'library ns':>12}{'ratio':>8}")
for case in order:
    print(f"{case:<18}{cpy[case]:>12.2f}{lib[case]:>12.2f}{lib[case] / cpy[case]:>8.2f}")
print(f"(best of {runs} runs of each, {5} repeats per run)")
