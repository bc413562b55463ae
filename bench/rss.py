"""Run a command and sample the resident memory of it and its children every few seconds.

    python bench/rss.py [--every 5] [--out FILE.json] -- estafeta seed --tickets 20000 --light

Prints one JSON object: the command, wall seconds, exit code, peak RSS of the whole process tree
and of its largest process (MiB), and the samples ``[seconds, tree MiB, largest process MiB]``.
Reads /proc (Linux), so it needs no extra package.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return []
    kids = [int(p) for p in text.split()]
    return kids + [g for k in kids for g in _children(k)]


def sample(pid: int) -> tuple[int, int]:
    """(RSS of the tree, RSS of its largest process), KiB."""
    sizes = [_rss_kib(p) for p in [pid, *_children(pid)]]
    return sum(sizes), max(sizes, default=0)


def measure(command: list[str], every: float = 5.0, env: dict[str, str] | None = None,
            cwd: str | Path | None = None) -> dict[str, object]:
    started = time.monotonic()
    proc = subprocess.Popen(command, env=env, cwd=cwd)
    samples: list[tuple[float, float, float]] = []
    while True:
        try:
            proc.wait(timeout=every if samples else 1.0)
            break
        except subprocess.TimeoutExpired:
            tree, largest = sample(proc.pid)
            if tree:
                samples.append((round(time.monotonic() - started, 1), round(tree / 1024, 1),
                                round(largest / 1024, 1)))
    seconds = time.monotonic() - started
    return {"command": command, "seconds": round(seconds, 1), "returncode": proc.returncode,
            "peak_tree_mib": max((s[1] for s in samples), default=0.0),
            "peak_process_mib": max((s[2] for s in samples), default=0.0),
            "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    result = measure(command, args.every)
    text = json.dumps(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)
    sys.exit(int(result["returncode"] or 0))  # type: ignore[call-overload]


if __name__ == "__main__":
    main()
