"""What a rule is, what it reports, and how its fixes are expressed.

A rule is a small class: a code, a kebab-case name, a one-line summary, its documentation
(the module docstring: what, why, example, fix), VALID and INVALID examples that the test suite
runs, and ``check(project)`` yielding findings. Fixes are text edits located by span; the fixer
applies them and re-parses the result before anything is written.
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, ClassVar, Dict, Iterator, List, Optional

from celery_chain_lint.facts.ir import Span
from celery_chain_lint.findings import Finding, Fix

if TYPE_CHECKING:
    from celery_chain_lint.workflow.replay import Replay
    from celery_chain_lint.index.project import Project
    from celery_chain_lint.config.settings import Settings


class Invalid(str):
    """An INVALID example that also says what its fix gives (as fixit's ``Invalid(...,
    expected_replacement=...)``): the example's source, and ``fixed``, the source after
    ``--fix`` (``--unsafe-fixes`` for a rule whose fixes are unsafe). A plain string is an
    example without a fix to check."""

    fixed: Optional[str]

    def __new__(cls, source: str, fixed: Optional[str] = None) -> "Invalid":
        example = super().__new__(cls, source)
        example.fixed = fixed
        return example


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    # Code snippets: each VALID one yields no finding of this rule; each INVALID one yields
    # exactly the findings its ``# expect: CODE`` comments name.
    VALID: ClassVar[List[str]] = []
    INVALID: ClassVar[List[str]] = []
    fixable: ClassVar[bool] = False
    # What the rule reads that the loader would otherwise leave unread (load/pipeline.py):
    # task methods (``.s()``, ``.delay()``...) called, in any body, on what may be a plain
    # function rather than a task (CCL015 looks for those).
    reads_task_methods_on_functions: ClassVar[bool] = False
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
                replay: Optional["Replay"] = None) -> Finding:
        return Finding(self.code, self.name, path, span, message, fix, replay)
