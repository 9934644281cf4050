"""GitHub Actions workflow commands: one ``::error`` annotation per finding.

``::error file=PATH,line=L,col=C,endLine=L2,endColumn=C2,title=CODE::message``; values are
escaped as the runner expects (``%``, CR, LF, and ``:``/``,`` in properties); undecodable bytes
of a path as U+FFFD (printable.py).
"""
from __future__ import annotations

from typing import List

from celery_chain_lint.findings import Finding
from celery_chain_lint.reporters.printable import readable


def _data(value: str) -> str:
    return readable(value).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(value: str) -> str:
    return _data(value).replace(":", "%3A").replace(",", "%2C")


def render(findings: List[Finding], files: int, options=None) -> str:
    lines = []
    for f in findings:
        span = f.span
        lines.append(f"::error file={_property(f.path)},line={span.line},col={span.column},"
                     f"endLine={span.end_line},endColumn={span.end_column},"
                     f"title={_property(f.code)}::"
                     f"{_data(f'{f.code} {f.message} ({f.name})')}")
    return "".join(line + "\n" for line in lines)
