"""One JSON array of findings (GUIDE section 4); undecodable bytes of a path as U+FFFD
(printable.py)."""
from __future__ import annotations

import json
from typing import List

from celery_chain_lint.findings import Finding
from celery_chain_lint.reporters.printable import clean


def render(findings: List[Finding], files: int, options=None) -> str:
    return json.dumps(clean([finding.to_json() for finding in findings]), indent=2) + "\n"
