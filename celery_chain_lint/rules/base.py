"""What a rule is, what it reports, and how its fixes are expressed.

A rule is a small class: a code, a kebab-case name, a one-line summary, its documentation
(the module docstring: what, why, example, fix), VALID and INVALID examples that the test suite
runs, and ``check(project)`` yielding findings. Fixes are text edits located by span; the fixer
applies them and re-parses the result with libcst before anything is written.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Dict, Iterator, List, Optional, Tuple

from celery_chain_lint.facts.ir import Span

if TYPE_CHECKING:
    from celery_chain_lint.project import Project
    from celery_chain_lint.settings import Settings


@dataclass(frozen=True)
class Edit:
    span: Span
    content: str

    def to_json(self) -> dict:
        return {"content": self.content,
                "location": {"row": self.span.line, "column": self.span.column},
                "end_location": {"row": self.span.end_line, "column": self.span.end_column}}


@dataclass(frozen=True)
class Fix:
    message: str
    edits: Tuple[Edit, ...]
    applicability: str = "safe"  # "safe" or "unsafe", as ruff says

    def to_json(self) -> dict:
        return {"message": self.message, "applicability": self.applicability,
                "edits": [edit.to_json() for edit in self.edits]}


@dataclass(frozen=True)
class Finding:
    code: str
    name: str
    path: str
    span: Span
    message: str
    fix: Optional[Fix] = None
    # Data for the runtime harness: the workflow and the tasks involved, as plain JSON.
    replay: Optional[dict] = field(default=None, compare=False, hash=False)

    def sort_key(self):
        return (self.path, self.span.line, self.span.column, self.code)

    def to_json(self) -> dict:
        data = {"code": self.code, "name": self.name, "path": self.path,
                "line": self.span.line, "column": self.span.column,
                "end_line": self.span.end_line, "end_column": self.span.end_column,
                "message": self.message,
                "fix": self.fix.to_json() if self.fix is not None else None}
        if self.replay is not None:
            data["replay"] = self.replay
        return data


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    # Code snippets: each VALID one yields no finding of this rule; each INVALID one yields
    # exactly the findings its ``# expect: CODE`` comments name.
    VALID: ClassVar[List[str]] = []
    INVALID: ClassVar[List[str]] = []
    fixable: ClassVar[bool] = False
    # Whether --fix alone applies this rule's fixes: "safe" (always), "unsafe" (only with
    # --unsafe-fixes) or "sometimes unsafe" (it depends on the finding). ``rules`` shows it.
    fix_safety: ClassVar[str] = "safe"
    # Per-rule options, set in ``[tool.celery-chain-lint.<rule name>]``: option name
    # (kebab-case) -> default value. A configured value must have the default's type (a list
    # of strings for a list); unknown options are a configuration error. Read with option().
    options: ClassVar[Dict[str, Any]] = {}

    def __init__(self, settings: Optional["Settings"] = None):
        self.settings = settings

    def option(self, name: str) -> Any:
        """This rule's option ``name``: configured (``settings.rule_options[rule.name]``), else
        its default."""
        configured = self.settings.rule_options.get(self.name, {}) if self.settings else {}
        return configured.get(name, self.options[name])

    def check(self, project: "Project") -> Iterator[Finding]:
        raise NotImplementedError

    @classmethod
    def documentation(cls) -> str:
        return (sys.modules[cls.__module__].__doc__ or "").strip()

    def finding(self, path: str, span: Span, message: str, fix: Optional[Fix] = None,
                replay: Optional[dict] = None) -> Finding:
        return Finding(self.code, self.name, path, span, message, fix, replay)
