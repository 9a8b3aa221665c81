#!/usr/bin/env python3
"""Line coverage of src/ from an lcov file, without the unit tests' own code
(everything from a `#[cfg(test)]` line to the end of its file, where this
crate keeps its `mod tests`), which llvm-cov counts as covered source.
Usage: coverage_summary.py LCOV_FILE"""
import sys

files, current = {}, None
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("SF:"):
        current = line[3:]
        files[current] = {}
    elif line.startswith("DA:") and current:
        n, hits = line[3:].split(",")[:2]
        files[current][int(n)] = files[current].get(int(n), 0) + int(hits)

total = covered = 0
for path, lines in sorted(files.items()):
    if "/src/" not in path:
        continue
    src = open(path).read().splitlines()
    cut = next((i + 1 for i, l in enumerate(src) if l.strip() == "#[cfg(test)]" and i + 1 < len(src)
                and src[i + 1].strip().startswith("mod tests")), len(src) + 1)
    kept = {n: h for n, h in lines.items() if n < cut}
    total += len(kept)
    covered += sum(1 for h in kept.values() if h > 0)
print(f"coverage without unit-test code: {100.0 * covered / total:.2f}% of lines ({covered} of {total})")
