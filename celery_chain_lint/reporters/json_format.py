"""One JSON array of findings (GUIDE section 4)."""
from __future__ import annotations

import json
from typing import List

from celery_chain_lint.findings import Finding


def render(findings: List[Finding], files: int, options=None) -> str:
    return json.dumps([finding.to_json() for finding in findings], indent=2) + "\n"
