"""What the text format shows beyond the findings: source lines, colour, fix counts."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List


@dataclass
class RenderOptions:
    show_source: bool = False
    color: bool = False
    quiet: bool = False
    fixed: int = 0  # findings fixed by --fix in this run
    unsafe_fixes: bool = False  # --unsafe-fixes was given: unsafe fixes count as fixable
    fix_mode: bool = False  # --fix was given
    # Text analysed instead of the files on disk (standard input), for --show-source.
    overrides: Dict[str, bytes] = field(default_factory=dict)
    # What the analyser saw, per project (index/coverage.Coverage): in --statistics and
    # SARIF always, after the text report with --show-coverage.
    coverage: List[Any] = field(default_factory=list)
    show_coverage: bool = False
    # None of the files checked uses Celery: a clean result says so rather than "passed".
    no_celery: bool = False
