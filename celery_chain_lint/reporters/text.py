"""``path:line:col: CODE message`` per finding, then a summary, as flake8 and ruff print."""
from __future__ import annotations

from typing import List

from celery_chain_lint.rules.base import Finding


def render(findings: List[Finding], files: int) -> str:
    lines = [f"{f.path}:{f.span.line}:{f.span.column}: {f.code} {f.message}" for f in findings]
    if findings:
        fixable = sum(1 for f in findings if f.fix is not None)
        noun = "finding" if len(findings) == 1 else "findings"
        summary = f"Found {len(findings)} {noun} in {files} file{'s' if files != 1 else ''}."
        if fixable:
            summary += f" {fixable} fixable with --fix."
        lines.append(summary)
    else:
        lines.append(f"All checks passed ({files} file{'s' if files != 1 else ''}).")
    return "\n".join(lines) + "\n"
