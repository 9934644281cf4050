"""``--statistics``: how many findings of each code, most frequent first (as ruff)."""
from __future__ import annotations

import json
from collections import Counter
from typing import List

from celery_chain_lint.findings import Finding
from celery_chain_lint.reporters import coverage
from celery_chain_lint.reporters.text import all_passed


def rows(findings: List[Finding], options) -> List[dict]:
    counts = Counter(f.code for f in findings)
    names = {f.code: f.name for f in findings}
    fixable = Counter(f.code for f in findings if f.fix is not None
                      and (options.unsafe_fixes or f.fix.applicability == "safe"))
    ordered = sorted(counts, key=lambda code: (-counts[code], code))
    return [{"code": code, "name": names[code], "count": counts[code],
             "fixable": fixable[code] > 0} for code in ordered]


def render(findings: List[Finding], files: int, options, output_format: str = "text") -> str:
    table = rows(findings, options)
    if output_format == "json":
        return json.dumps(table, indent=2) + "\n"
    seen = coverage.render(options.coverage) if not options.quiet else ""
    if not table:
        return "" if options.quiet else f"{all_passed(files, options)}\n{seen}"
    width = max(len(str(row["count"])) for row in table)
    lines = [f"{row['count']:>{width}}\t{row['code']}\t{'[*] ' if row['fixable'] else '    '}"
             f"{row['name']}" for row in table]
    if not options.quiet:
        lines.append(f"Found {len(findings)} finding{'s' if len(findings) != 1 else ''} "
                     f"in {files} file{'s' if files != 1 else ''}.")
    return "\n".join(lines) + "\n" + seen
