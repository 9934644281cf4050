"""Reads the findings a fixture expects from its own comments.

A fixture line that should produce a finding ends with ``# expect: CODE`` (several codes
separated by commas). The finding's line is the line of that comment.
"""
from __future__ import annotations

import re
from pathlib import Path

EXPECT = re.compile(r"#\s*expect:\s*(?P<codes>CCL\d{3}(?:\s*,\s*CCL\d{3})*)")


def expected_findings(root: Path) -> set[tuple[str, int, str]]:
    """(path relative to root, line, code) for every ``# expect:`` comment under root."""
    found = set()
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            match = EXPECT.search(line)
            if match:
                for code in re.split(r"\s*,\s*", match["codes"]):
                    found.add((path.relative_to(root).as_posix(), number, code))
    return found
