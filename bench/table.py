"""Markdown table from a pytest-benchmark JSON file: µs per request (median)
and each implementation's ratio to the compiled parser.

    python -m pytest bench/test_bench_parser.py --benchmark-only --benchmark-json=bench.json
    python bench/table.py bench.json
"""

from __future__ import annotations

import json
import sys

ORDER = ["fastbase_c", "fastbase_py", "httptools", "h11", "http_server"]
LABELS = {
    "fastbase_c": "fastbase (compiled)",
    "fastbase_py": "fastbase (twin)",
    "httptools": "httptools + callbacks",
    "h11": "h11",
    "http_server": "http.server",
}


def main(path: str) -> None:
    with open(path) as f:
        report = json.load(f)
    rows: dict = {}
    for bench in report["benchmarks"]:
        name = bench["name"]
        impl = bench["params"]["impl"]
        case = bench["params"].get("case") or bench.get("group") or "encode_head"
        per_request = bench["stats"]["median"] / bench["extra_info"]["requests"] * 1e6
        rows.setdefault(case, {})[impl] = per_request
        del name
    impls = [i for i in ORDER if any(i in r for r in rows.values())]
    print("| input | " + " | ".join(LABELS[i] for i in impls) + " |")
    print("|---|" + "---:|" * len(impls))
    for case, values in rows.items():
        base = values.get("fastbase_c")
        cells = []
        for impl in impls:
            if impl not in values:
                cells.append("")
            elif impl == "fastbase_c" or base is None:
                cells.append(f"{values[impl]:.2f}")
            else:
                cells.append(f"{values[impl]:.2f} ({values[impl] / base:.1f}×)")
        print(f"| {case} | " + " | ".join(cells) + " |")
    machine = report.get("machine_info", {})
    print()
    print(
        f"µs per request, median; (n×) = times the compiled parser's time. "
        f"Python {machine.get('python_version', '?')}, {machine.get('cpu', {}).get('brand_raw', '?')}."
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench.json")
