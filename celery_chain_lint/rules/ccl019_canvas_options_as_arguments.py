"""CCL019 canvas-options-as-arguments: an option given to a canvas's ``.delay()`` goes to its tasks.

## What it does
Flags ``chain(...).delay(countdown=60)``, ``(a.s() | b.s()).delay(queue="slow")``,
``group(...).delay(expires=30)``, ``chord(...).delay(eta=when)``, ``sig.delay(priority=9)`` and
``chain(...)(countdown=60)`` when a keyword is an ``apply_async`` execution option that the
tasks receiving it do not declare as a parameter. The tasks receiving it are the chain's first
task, every member of a group, every member of a chord's header. For a task with ``**kwargs``
only the options no task would take for itself count (``countdown``, ``eta``, ``expires``...),
as in CCL013.

## Why is this bad?
A canvas's ``delay(*args, **kwargs)`` is ``apply_async(args, kwargs)``: the keywords are task
arguments, merged into the first tasks' keywords, never message options. Observed on Celery
5.7.0 (Redis broker and backend): ``chain(add.s(1, 2), add.s(3)).delay(countdown=60)``, the
same ``group``, ``chord`` and ``|`` canvases raised
``TypeError: add() got an unexpected keyword argument 'countdown'`` when published; a first
task taking ``**kwargs`` ran at once with ``countdown=60`` among its arguments; an immutable
first task (``.si()``) ran at once and the option vanished. (``group(...)(countdown=...)`` and
``chord(header)(body, countdown=...)`` do take options: they are not reported.)

## Example
```python
chain(charge.s(order_id), receipt.s()).delay(countdown=60)   # TypeError, or runs now
group(ping.s(host) for host in hosts).delay(expires=30)       # not reported: dynamic group
```

## How to fix
Give options to ``apply_async``, or to the signatures with ``.set()``:
```python
chain(charge.s(order_id), receipt.s()).apply_async(countdown=60)
```
``--fix`` (unsafe: the option takes effect) rewrites a one-line ``.delay(...)`` that way.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Iterator, List, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.rules.base import Invalid, Rule
from celery_chain_lint.rules.ccl013_options_as_arguments import OptionsAsArguments
from celery_chain_lint.workflow.model import (
    ChainNode,
    SignatureNode,
    Workflow,
    argument_receivers,
    kind_of,
    task_display,
)
from celery_chain_lint.workflow.options import (
    EXECUTION_OPTIONS,
    accepts_any_keyword,
    mentioned_strings,
    misplaced_options,
)
from celery_chain_lint.workflow.replay import Receiver, Replay, workflow_replay

_APP = """\
from celery import Celery, chain, chord, group
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def add(x, y):
    return x + y

@app.task
def total(values):
    return sum(values)

@app.task
def remind(user_id, **context):
    return user_id

@app.task
def route(order_id, queue="default"):
    return queue
"""

# What a receiving task does with the option: "refused" (TypeError), "ignored" (**kwargs
# takes it), "dropped" (immutable: Celery merges nothing into it).
REFUSED, IGNORED, DROPPED = "refused", "ignored", "dropped"


class CanvasOptionsAsArguments(Rule):
    code = "CCL019"
    name = "canvas-options-as-arguments"
    summary = ("an execution option given to a chain's, group's or chord's .delay() is passed "
               "to its first tasks as an argument: TypeError, or silently ignored")
    fixable = True
    fix_safety = "unsafe"

    VALID = [
        _APP + "chain(add.s(1, 2), add.s(3)).apply_async(countdown=60)\n",
        _APP + "group(add.s(1, 2), add.s(3, 4))(countdown=60)\n",
        _APP + 'chain(route.s(1), add.s(2)).delay(queue="fast")\n',
        _APP + 'chain(remind.s(1), add.s(2)).delay(priority="high")\n',
        _APP + "chain(add.s(1), add.s(3)).delay(y=2)\n",
        _APP + "add.delay(1, 2, countdown=60)\n",
        _APP + "chain(add.s(1, 2), add.s(3)).delay(**options)\n",
        _APP + "import itertools\nitertools.chain([1], [2]).delay(countdown=60)\n",
    ]
    INVALID = [
        Invalid(_APP + "chain(add.s(1, 2), add.s(3)).delay(countdown=60)  # expect: CCL019\n",
                fixed=_APP + "chain(add.s(1, 2), add.s(3)).apply_async(countdown=60)"
                             "  # expect: CCL019\n"),
        _APP + "(add.s(1, 2) | add.s(3)).delay(countdown=60)  # expect: CCL019\n",
        _APP + "group(add.s(1, 2), add.s(3, 4)).delay(expires=30)  # expect: CCL019\n",
        _APP + "chord([add.s(1, 2), add.s(3, 4)], total.s()).delay(countdown=5)  # expect: CCL019\n",
        _APP + "chain(remind.s(1), add.s(2))(countdown=3600)  # expect: CCL019\n",
        _APP + "chain(add.si(1, 2), add.s(3)).delay(countdown=60)  # expect: CCL019\n",
    ]

    def check(self, project) -> Iterator:
        for workflow in project.workflows:
            options = _options_given_as_arguments(workflow)
            if not options:
                continue
            effects = _effects(workflow, options)
            if not effects:
                continue
            call = workflow.expr
            flagged = sorted({option for _, _, found in effects for option in found},
                             key=options.index)
            yield self.finding(workflow.module.path, workflow.application.span,
                               self._message(workflow, flagged, effects),
                               self._fix(workflow, call, flagged, options),
                               replay=_replay(workflow, flagged, effects))

    @staticmethod
    def _message(workflow: Workflow, flagged: List[str], effects) -> str:
        names = ", ".join(flagged)
        kind = kind_of(workflow.canvas)
        method = ".delay()" if workflow.application.how == "delay" else "call"
        receiving = ("its task" if kind == "signature" else "its first task"
                     if kind == "chain" else "every member of its header" if kind == "chord"
                     else "every member")
        noun = "is an execution option" if len(flagged) == 1 else "are execution options"
        outcomes = []
        for signature, effect, found in effects:
            described = _describe(signature, effect, found)
            if described not in outcomes:  # a group of the same task says it once
                outcomes.append(described)
        outcome = "; ".join(outcomes[:2])
        settings = ", ".join(f"{name}=..." for name in flagged)
        return (f"{names} {noun} given to the {kind}'s {method}, which passes keywords to "
                f"{receiving} as arguments: {outcome}; use .apply_async({settings}) on the "
                f"{kind}")

    @staticmethod
    def _fix(workflow: Workflow, call, flagged: List[str], options: List[str]):
        # Only when every option given is misplaced: one a task takes as its own argument
        # would stop reaching it.
        if workflow.application.how != "delay" or sorted(flagged) != sorted(options) \
                or not isinstance(call, ir.Call) or not isinstance(call.func, ir.Attribute):
            return None
        owner = call.func.value
        if isinstance(owner, ir.BinOp):
            # ``(a.s() | b.s()).delay(...)``: the pipe's text leaves out its parentheses.
            if owner.span is None or owner.span.column != call.span.column + 1:
                return None
            owner = replace(owner, text=f"({owner.text})")
            call = replace(call, func=replace(call.func, value=owner))
        return OptionsAsArguments._fix(call, flagged)


def _options_given_as_arguments(workflow: Workflow) -> List[str]:
    """The execution options among the keywords the canvas is applied with as arguments."""
    application = workflow.application
    if application is None or application.kwargs is None:
        return []
    canvas = workflow.canvas
    if isinstance(canvas, SignatureNode) and canvas.via == "delay":
        return []  # ``task.delay(countdown=...)``: CCL013's
    # ``chain(...)(**kw)`` is ``apply_async((), kw)``; a group's or chord's ``__call__`` takes
    # options, a signature's calls the task in this process.
    if application.how != "delay" and not (application.how == "call"
                                           and isinstance(canvas, ChainNode)):
        return []
    return [key for key, _ in application.kwargs if key in EXECUTION_OPTIONS]


def _effects(workflow: Workflow, options: List[str]) -> List[Tuple[SignatureNode, str, List[str]]]:
    """(receiving signature, what it does with them, the options concerned), for each
    receiving task whose parameters are known and that does not take the option itself."""
    receivers = argument_receivers(workflow.canvas)
    found = []
    for signature in receivers or ():
        task = signature.task
        if task is None or task.params is None:
            continue
        misplaced = misplaced_options(task, options, mentioned_strings(task))
        if not misplaced:
            continue
        if signature.immutable:
            effect = DROPPED
        elif accepts_any_keyword(task):
            effect = IGNORED
        else:
            effect = REFUSED
        found.append((signature, effect, misplaced))
    return found


def _describe(signature: SignatureNode, effect: str, options: List[str]) -> str:
    task = signature.task
    name = task_display(signature)
    if effect == DROPPED:
        return (f"{name} is immutable (.si()) and drops them, so {', '.join(options)} "
                "silently has no effect")
    if effect == IGNORED:
        return (f"{name} takes **kwargs, so it receives {', '.join(options)} as an argument and "
                "runs as if no option were given")
    if task.class_facts is not None or task.literal_option("typing", True) is False:
        return f"{name}{task.params.render()} fails with TypeError on the worker"
    return (f"{name}{task.params.render()} raises TypeError (unexpected keyword argument "
            f"{options[0]!r}) when the canvas is published")


def _replay(workflow: Workflow, flagged: List[str], effects) -> Replay:
    return replace(workflow_replay(workflow), options=tuple(flagged), receivers=tuple(
        Receiver(getattr(signature.task, "name", None),
                 signature.span.line if signature.span else None, effect)
        for signature, effect, _ in effects))
