"""Line coverage of the .pyx files from an llvm-cov profile of the C that
Cython generated (fuzz/build/c/, cythonized with #line directives).

    python fuzz/pyx_coverage.py PROFDATA SO... [--missed]

llvm-cov counts lines of the generated C, most of them Cython's own
boilerplate; this maps each C line to the .pyx line its ``#line`` directive
names and reports, per .pyx file, the lines with code and the lines that
ran at least once (a .pyx line ran when any of its C lines did).
``--missed`` lists the .pyx lines that never ran.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

LINE = re.compile(r'#line (\d+) "([^"]+)"')


def pyx_lines_of(c_file: Path):
    """C line number -> (pyx file, pyx line) for lines under a .pyx #line."""
    mapping = {}
    current = None
    for number, text in enumerate(c_file.read_text().splitlines(), 1):
        match = LINE.match(text)
        if match:
            line, name = int(match.group(1)), match.group(2)
            current = (name, line) if name.endswith(".pyx") else None
            continue
        if current is not None and text.strip():
            mapping[number] = current
    return mapping


def main(argv):
    missed = "--missed" in argv
    args = [a for a in argv if a != "--missed"]
    profdata, objects = args[0], args[1:]
    cmd = ["llvm-cov", "export", "-format=lcov", "-instr-profile", profdata, objects[0]]
    for obj in objects[1:]:
        cmd += ["-object", obj]
    lcov = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    counts = defaultdict(lambda: defaultdict(int))  # pyx -> line -> max count
    mapping = {}
    for record in lcov.split("end_of_record"):
        source = re.search(r"^SF:(.*)$", record, re.M)
        if not source or not source.group(1).endswith(".c"):
            continue
        c_file = Path(source.group(1))
        if c_file not in mapping:
            mapping[c_file] = pyx_lines_of(c_file)
        for line, count in re.findall(r"^DA:(\d+),(\d+)", record, re.M):
            target = mapping[c_file].get(int(line))
            if target is not None:
                name, pyx_line = target
                counts[name][pyx_line] = max(counts[name][pyx_line], int(count))
    for name in sorted(counts):
        lines = counts[name]
        report(name, lines, missed)
        # The reading and writing halves (split at the "# --- writing" or
        # "# --- response writer" banner), since different harnesses cover them.
        text = Path(name).read_text().splitlines() if Path(name).exists() else []
        split = next((i + 1 for i, t in enumerate(text) if re.match(r"# --- (writing|response writer)", t)), None)
        if split:
            report(f"  {name} reading (lines < {split})", {n: c for n, c in lines.items() if n < split}, missed)
            report(f"  {name} writing (lines >= {split})", {n: c for n, c in lines.items() if n >= split}, missed)


def report(name, lines, missed):
    if not lines:
        return
    ran = sum(1 for c in lines.values() if c)
    print(f"{name}: {ran}/{len(lines)} lines ran ({100 * ran / len(lines):.1f}%)")
    if missed:
        print("    missed:", " ".join(str(n) for n in sorted(n for n, c in lines.items() if not c)))


if __name__ == "__main__":
    main(sys.argv[1:])
