"""Run every benchmark of bench/ one after the other with its default settings (``make bench``).

Each prints its own table; docs/benchmarks.md says what each measures and holds the recorded
results. Benchmarks measure the machine as it is: run them on an otherwise idle one.

    .venv/bin/python bench/run_all.py                  # all
    .venv/bin/python bench/run_all.py soap registry    # some, by name (bench_<name>.py)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ORDER = ["soap", "registry", "find_documents", "repository", "adt", "imaging", "xca", "security"]
# bench_xca.py takes a sub-command per measurement; the others measure everything by default
RUNS = {"xca": [["fanout"], ["throughput"]]}


def main(argv: list[str]) -> int:
    names = argv or ORDER
    unknown = [n for n in names if not (BENCH / f"bench_{n}.py").is_file()]
    if unknown:
        print(f"no such benchmark: {', '.join(unknown)} (known: {', '.join(ORDER)})", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        for args in RUNS.get(name, [[]]):
            label = " ".join([f"bench_{name}.py", *args])
            print(f"\n=== {label} ===", flush=True)
            started = time.monotonic()
            rc = subprocess.call([sys.executable, str(BENCH / f"bench_{name}.py"), *args])
            print(f"=== {label}: exit {rc} after {time.monotonic() - started:.0f} s ===", flush=True)
            if rc:
                failed.append(label)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
