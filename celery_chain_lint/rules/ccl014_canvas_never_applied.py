"""CCL014 canvas-never-applied: a canvas is built as a statement and thrown away.

## What it does
Flags an expression statement that builds a signature or canvas and does nothing with it:
``chain(a.s(), b.s())``, ``a.s() | b.s()``, ``group(...)``, ``chord(...)``, ``task.s(...)``
on a line of its own, not applied (``.delay()``, ``.apply_async()``, calling it), not assigned,
returned or passed anywhere. Method calls that change a signature kept in a variable
(``sig.set(...)``, ``sig.link(...)``) and statements inside test functions or
``pytest.raises`` blocks are not reported.

## Why is this bad?
Building a canvas sends nothing: a signature is only a description of a call until it is
applied. The statement runs without error, so tests that do not check the tasks' effects pass,
and in production the work is silently never done. Observed on Celery 5.7.0: after
``chain(authorize.s(1), capture.s())`` as a statement, the worker received no message and
neither task ran within 2 s (the same chain followed by ``.delay()`` ran both at once).

## Example
```python
def checkout(order_id):
    chain(authorize.s(order_id), capture.s(), notify.s())   # nothing runs
```

## How to fix
Apply it:
```python
    chain(authorize.s(order_id), capture.s(), notify.s()).delay()
```
``--fix`` (unsafe: the workflow starts running) appends ``.delay()``.
"""
from __future__ import annotations

from typing import Iterator, Optional

from celery_chain_lint.facts import ir
from celery_chain_lint.index.symbols import TaskSym, celery_name
from celery_chain_lint.findings import Edit, Fix
from celery_chain_lint.rules.base import Invalid, Rule
from celery_chain_lint.workflow.model import (
    ChainNode,
    ChordNode,
    GroupNode,
    SignatureNode,
    Workflow,
    kind_of,
)
from celery_chain_lint.workflow.replay import workflow_replay

CONSTRUCTORS = frozenset({"chain", "group", "chord", "signature", "Signature"})
SIGNATURE_METHODS = frozenset({"s", "si", "signature", "subtask"})
_RAISES = frozenset({"raises", "assertRaises", "assertRaisesRegex"})

_APP = """\
from celery import Celery, chain, group
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def add(x, y):
    return x + y

@app.task
def double(value):
    return value * 2
"""


class CanvasNeverApplied(Rule):
    code = "CCL014"
    name = "canvas-never-applied"
    summary = "a canvas is built as a statement and never applied: nothing runs"
    fixable = True
    fix_safety = "unsafe"

    VALID = [
        _APP + "chain(add.s(1, 2), double.s()).delay()\n",
        _APP + "flow = chain(add.s(1, 2), double.s())\nflow.delay()\n",
        _APP + "def make():\n    sig = add.s(1, 2)\n    sig.set(countdown=5)\n    return sig\n",
    ]
    INVALID = [
        Invalid(_APP + "chain(add.s(1, 2), double.s())  # expect: CCL014\n",
                fixed=_APP + "chain(add.s(1, 2), double.s()).delay()  # expect: CCL014\n"),
        _APP + "def run():\n    add.s(1, 2) | double.s()  # expect: CCL014\n",
        _APP + "def run():\n    add.s(1, 2)  # expect: CCL014\n",
    ]

    def check(self, project) -> Iterator:
        for workflow in project.workflows:
            if workflow.root_kind != "expr" or workflow.applied or workflow.callbacks:
                continue
            if not isinstance(workflow.canvas, (ChainNode, GroupNode, ChordNode, SignatureNode)):
                continue
            expr = workflow.expr
            if expr is None or expr.span is None or not self._is_statement(workflow):
                continue
            if not self._builds_here(project, workflow.module.module, expr):
                continue
            if self._in_test(workflow, expr):
                continue
            kind = kind_of(workflow.canvas)
            message = (f"this {kind} is built and thrown away: a canvas runs only when it is "
                       f"applied, so nothing is sent and no task runs; apply it with .delay() "
                       f"or .apply_async(), or remove the statement")
            yield self.finding(workflow.module.path, expr.span, message, self._fix(expr),
                               replay=workflow_replay(workflow))

    @staticmethod
    def _is_statement(workflow: Workflow) -> bool:
        """The canvas is the whole statement, not a part of it."""
        return any(root.expr is workflow.expr and root.kind == "expr"
                   for root in workflow.module.roots)

    def _builds_here(self, project, module: str, expr: ir.Expr) -> bool:
        """Built by this statement: a constructor, ``.s()`` on a task, ``|``, or a method on one.

        A method called on a variable (``sig.set(...)``, the variable's value substituted from
        elsewhere) may change that signature in place: not reported.
        """
        if isinstance(expr, ir.BinOp):
            return True
        if not isinstance(expr, ir.Call):
            return False
        func = expr.func
        if isinstance(func, ir.Attribute):
            if func.attr in SIGNATURE_METHODS:
                symbol = project.resolver.resolve(func.value, module)
                if isinstance(symbol, TaskSym):
                    return True
            owner = func.value
            if owner.span is None or not _inside(owner.span, expr.span):
                return False  # a method on a variable
            return self._builds_here(project, module, owner)
        return celery_name(project.resolver.resolve(func, module)) in CONSTRUCTORS

    @staticmethod
    def _in_test(workflow: Workflow, expr: ir.Expr) -> bool:
        scope = workflow.scope
        if scope.split(".")[-1].startswith("test"):
            return True
        function = workflow.module.functions.get(scope) if scope else None
        if function is None:
            return False
        for site in function.calls:
            if site.call.span is not None and _inside(site.call.span, expr.span):
                return any(_is_raises(item) for item in site.with_items)
        return False

    @staticmethod
    def _fix(expr: ir.Expr) -> Optional[Fix]:
        span = expr.span
        end = ir.Span(span.end_line, span.end_column, span.end_line, span.end_column)
        if isinstance(expr, ir.BinOp):
            start = ir.Span(span.line, span.column, span.line, span.column)
            edits = (Edit(start, "("), Edit(end, ").delay()"))
        else:
            edits = (Edit(end, ".delay()"),)
        return Fix("Apply it with .delay()", edits, applicability="unsafe")


def _is_raises(item: ir.Expr) -> bool:
    return isinstance(item, ir.Call) and isinstance(item.func, ir.Attribute) \
        and item.func.attr in _RAISES


def _inside(inner: ir.Span, outer: ir.Span) -> bool:
    return (outer.line, outer.column) <= (inner.line, inner.column) \
        and (inner.end_line, inner.end_column) <= (outer.end_line, outer.end_column)
