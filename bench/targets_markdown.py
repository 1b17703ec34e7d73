"""The closing table of ``run_all.py`` (its "== targets" section, from a saved output) as Markdown rows,
for docs/performance.md.

    python bench/run_all.py | tee /tmp/bench.txt && python bench/targets_markdown.py /tmp/bench.txt
"""

from __future__ import annotations

import re
import sys


def main(path: str) -> None:
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("== targets ("))
    header, rule = lines[start + 1], lines[start + 2]
    # Columns are separated by two spaces and aligned under the dashes of the rule line.
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", rule)]
    print(lines[start][3:])

    def cells(line: str) -> list[str]:
        return [line[a:(spans[i + 1][0] if i + 1 < len(spans) else None)].strip() for i, (a, _) in enumerate(spans)]

    print("| " + " | ".join(cells(header)) + " |")
    print("|" + "---|" * len(spans))
    for line in lines[start + 3:]:
        if not line.strip():
            break
        print("| " + " | ".join(cells(line)) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
