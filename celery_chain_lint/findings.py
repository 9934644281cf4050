"""What the tool reports: a finding, its fix and the fix's text edits, and the two codes the
engine itself reports. Rules, reporters, the fixer and the harness all speak these types."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Tuple

from celery_chain_lint.facts.ir import Span

if TYPE_CHECKING:  # the workflow layer builds it; this module only writes it
    from celery_chain_lint.workflow.replay import Replay

# The codes outside the rule classes (rules/catalogue.py documents them).
UNUSED_NOQA_CODE, UNUSED_NOQA_NAME = "CCL998", "unused-noqa"
PARSE_ERROR_CODE, PARSE_ERROR_NAME = "CCL999", "could-not-analyse"
ENGINE_CODES = (UNUSED_NOQA_CODE, PARSE_ERROR_CODE)


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
    # Data for the runtime harness: the workflow and the tasks involved (workflow/replay.py).
    replay: Optional["Replay"] = field(default=None, compare=False, hash=False)

    def sort_key(self):
        return (self.path, self.span.line, self.span.column, self.code)

    def to_json(self) -> dict:
        data = {"code": self.code, "name": self.name, "path": self.path,
                "line": self.span.line, "column": self.span.column,
                "end_line": self.span.end_line, "end_column": self.span.end_column,
                "message": self.message,
                "fix": self.fix.to_json() if self.fix is not None else None}
        if self.replay is not None:
            data["replay"] = self.replay.to_json()
        return data
