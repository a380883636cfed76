"""Summarize py-spy collapsed stacks (`--format raw`): the functions with the most
samples, self and inclusive. `python -m bench.profile_summary FILE [N]`."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

__all__ = ["summarize"]


def summarize(text: str, top: int = 15) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f.split(" (")[0] + " " + f.split("/")[-1].rstrip(")") for f in stack.split(";")]
        frames = [f for f in frames if f.strip()]
        if not frames:
            continue
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{total} samples", "self%  incl%  function"]
    for frame, n in own.most_common(top):
        lines.append(f"{100 * n / total:5.1f}  {100 * inclusive[frame] / total:5.1f}  {frame}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    print(summarize(Path(args[0]).read_text(), int(args[1]) if len(args) > 1 else 15))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
