"""GitLab Code Quality report (a JSON array of issues), as ruff writes it.

Each issue: ``description``, ``check_name`` (the code), ``fingerprint`` (stable across runs
that only move the code: it hashes the code, path, message and the occurrence number, not the
line), ``severity`` and ``location`` with ``positions``.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import List

from celery_chain_lint.findings import Finding
from celery_chain_lint.reporters.printable import clean, readable


def render(findings: List[Finding], files: int, options=None) -> str:
    seen: Counter = Counter()
    issues = []
    for f in findings:
        path = readable(f.path).replace("\\", "/")
        identity = (f.code, path, readable(f.message))
        seen[identity] += 1
        digest = hashlib.sha256("\0".join(identity + (str(seen[identity]),)).encode()).hexdigest()
        issues.append({
            "description": f"({f.code}) {f.message}",
            "check_name": f.code,
            "fingerprint": digest,
            "severity": "minor" if f.code == "CCL998" else "major",
            "location": {
                "path": path,
                "positions": {
                    "begin": {"line": f.span.line, "column": f.span.column},
                    "end": {"line": f.span.end_line, "column": f.span.end_column},
                },
            },
        })
    return json.dumps(clean(issues), indent=2) + "\n"
