"""CCL025 chain-options-first-task: options given to a chain's ``apply_async`` reach its first task only.

## What it does
Flags ``chain(a.s(), b.s()).apply_async(queue="slow")`` and ``(a.s() | b.s()).apply_async(...)``
given ``queue``, ``priority``, ``expires``, ``time_limit`` or ``soft_time_limit``, when the chain
starts with a task and a later task does not set that option itself (on its signature with
``.set(...)``, or in its decorator or base class). ``priority`` is not reported when the app sets
``task_inherit_parent_priority = True``, nor when that setting or the tasks' app cannot be known.
A chain that starts with a group (Celery makes it a chord), a chord and a group are not reported:
they pass these options on.

## Why is this bad?
``_chain.run`` applies the options to the first task only; every later task is sent by the
worker when the one before it ends, with the options of its own signature. Observed on Celery
5.7.0 (Redis broker and backend, threads worker) with ``chain(show.s(1), show.s(), show.s())``:
``apply_async(queue="q2")`` ran the first task from ``q2`` and the other two from the default
queue; ``priority=7`` reached the first task only (all three with
``task_inherit_parent_priority = True``); ``expires=300`` and ``time_limit=77,
soft_time_limit=66`` were set on the first task's request only. A slow queue meant for the whole
workflow, an expiry, or a time limit silently applies to one task. The same options given to
``chord(...)``, ``group(...)`` or ``chain(group(...), task)`` reached every task (header and
body), and ``countdown`` on a chain delays its first task and so the whole chain: neither is
reported.

## Example
```python
chain(download.s(url), transcode.s(), upload.s()).apply_async(queue="video", time_limit=600)
# transcode and upload run on the default queue, with no time limit
```

## How to fix
Set the option on every signature, or route the tasks by name:
```python
chain(download.s(url), transcode.s(), upload.s()).apply_async(queue="video")
# ->
chain(*(sig.set(queue="video") for sig in (download.s(url), transcode.s(), upload.s()))).apply_async()
app.conf.task_routes = {"media.tasks.*": {"queue": "video"}}
```
"""
from __future__ import annotations

from dataclasses import replace
from typing import Dict, Iterator, List

from celery_chain_lint.index.apps import UNKNOWN
from celery_chain_lint.index.options import effective_options
from celery_chain_lint.index.tasks import MISSING, literal
from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.model import (
    ChainNode,
    SignatureNode,
    Workflow,
    signatures,
    task_display,
)
from celery_chain_lint.workflow.replay import Replay, workflow_replay

# The options observed to reach the first task only (Celery 5.7.0); time_limit and
# soft_time_limit are reported together as "time limits".
FIRST_TASK_ONLY = ("queue", "priority", "expires", "time_limit", "soft_time_limit")
# What a replay applies when the source's value is not literal.
STAND_INS = {"priority": 5, "expires": 3600, "time_limit": 300, "soft_time_limit": 240}

_APP = """\
from celery import Celery, chain, chord, group
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def fetch(url):
    return url

@app.task
def parse(page):
    return page

@app.task(queue="slow")
def store(record):
    return record

@app.task
def merge(values):
    return values
"""


class ChainOptionsFirstTask(Rule):
    code = "CCL025"
    name = "chain-options-first-task"
    summary = ("queue/priority/expires/time limits given to a chain's apply_async() reach its "
               "first task only: the later tasks run without them")

    VALID = [
        _APP + 'chain(fetch.s("u"), parse.s()).apply_async(countdown=10)\n',
        _APP + 'chord([fetch.s("a"), fetch.s("b")], merge.s()).apply_async(queue="fast")\n',
        _APP + 'chain(group(fetch.s("a"), fetch.s("b")), merge.s()).apply_async(queue="fast")\n',
        _APP + 'chain(fetch.s("u"), store.s()).apply_async(queue="slow")\n',
        _APP + 'chain(fetch.s("u"), parse.s().set(queue="fast")).apply_async(queue="fast")\n',
        _APP + 'app.conf.task_inherit_parent_priority = True\n'
               'chain(fetch.s("u"), parse.s()).apply_async(priority=9)\n',
        _APP + 'import os\napp.conf.task_inherit_parent_priority = os.environ["INHERIT"]\n'
               'chain(fetch.s("u"), parse.s()).apply_async(priority=9)\n',
        _APP + 'group(fetch.s("a"), fetch.s("b")).apply_async(expires=60)\n',
    ]
    INVALID = [
        _APP + 'chain(fetch.s("u"), parse.s()).apply_async(queue="fast")  # expect: CCL025\n',
        _APP + '(fetch.s("u") | parse.s()).apply_async(priority=9)  # expect: CCL025\n',
        _APP + 'chain(fetch.s("u"), parse.s(), store.s()).apply_async(  # expect: CCL025\n'
               '    expires=60, time_limit=30)\n',
        _APP + 'chain(fetch.s("u"), group(parse.s(), parse.s())).apply_async(queue="fast")'
               '  # expect: CCL025\n',
    ]

    def check(self, project) -> Iterator:
        for workflow in project.workflows:
            application = workflow.application
            canvas = workflow.canvas
            if application is None or application.how != "apply_async" \
                    or application.span is None or not isinstance(canvas, ChainNode) \
                    or len(canvas.steps) < 2 or not isinstance(canvas.steps[0], SignatureNode):
                continue
            given = [(key, value) for key, value in application.options
                     if key in FIRST_TASK_ONLY]
            if not given:
                continue
            first = canvas.steps[0]
            later = [s for step in canvas.steps[1:] for s in signatures(step)]
            if not later or any(s.task is None for s in later) or first.task is None:
                continue
            if any(key == "priority" for key, _ in given) \
                    and not self._priority_not_inherited(project, [first] + later):
                given = [(key, value) for key, value in given if key != "priority"]
            losing: Dict[str, List[SignatureNode]] = {}
            for key, _ in given:
                lost = [s for s in later if _lacks(project, s, key)]
                if lost:
                    losing[key] = lost
            if not losing:
                continue
            yield self.finding(workflow.module.path, application.span,
                               self._message(first, losing),
                               replay=_replay(workflow, given, losing))

    @staticmethod
    def _priority_not_inherited(project, sigs: List[SignatureNode]) -> bool:
        """The tasks' app is known and does not set task_inherit_parent_priority."""
        apps = {}
        for sig in sigs:
            app = project.apps.app_of_task(sig.task)
            if app is None:
                return False
            apps[id(app.call)] = app
        if len(apps) != 1:
            return False
        setting = project.apps.config(next(iter(apps.values()))).get(
            "task_inherit_parent_priority")
        return setting.state != UNKNOWN and setting.value is not True

    @staticmethod
    def _message(first: SignatureNode, losing: Dict[str, List[SignatureNode]]) -> str:
        names = list(losing)
        lost = []
        for sigs in losing.values():
            for sig in sigs:
                if task_display(sig) not in lost:
                    lost.append(task_display(sig))
        listed = ", ".join(lost[:4]) + (", ..." if len(lost) > 4 else "")
        options = ", ".join(names)
        return (f"{options} given to the chain's apply_async() reach{'es' if len(names) == 1 else ''}"
                f" only its first task ({task_display(first)}): Celery sends each later task "
                f"from the worker with its own signature's options, so {listed} run"
                f"{'s' if len(lost) == 1 else ''} without {'it' if len(names) == 1 else 'them'}"
                f"; set {'it' if len(names) == 1 else 'them'} on every signature "
                f"(.set({', '.join(f'{n}=...' for n in names)})) or route the tasks by name "
                "(task_routes)")


def _lacks(project, sig: SignatureNode, key: str) -> bool:
    """Whether the later task runs without the option: its signature and its task (decorator,
    base classes) do not set it. False when its options cannot be known."""
    if any(name == key for name, _ in sig.options):
        return False
    options = effective_options(project.resolver, sig.task)
    if options is None:
        return False
    if key in options:
        return literal(options[key], MISSING) is None  # ``queue=None`` sets nothing
    return True


def _replay(workflow: Workflow, given, losing: Dict[str, List[SignatureNode]]) -> Replay:
    replay = workflow_replay(workflow)
    applied = {}
    for key, expr in given:
        if key not in losing:
            continue
        value = literal(expr, MISSING)
        applied[key] = value if value is not MISSING and isinstance(value, (str, int, float)) \
            and not isinstance(value, bool) else STAND_INS.get(key, "<value>")
    flow = replay.workflow
    if flow.application is not None:
        flow = replace(flow, application=replace(flow.application, options=applied))
    return replace(replay, workflow=flow, losing={
        key: tuple(getattr(s.task, "name", None) for s in sigs) for key, sigs in losing.items()})
