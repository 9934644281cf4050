"""CCL013 options-as-arguments.

- CCL013: the call is replayed as written. A task without ``**kwargs`` refuses the keyword:
  confirmed on Celery's ``TypeError: ... unexpected keyword argument 'countdown'`` (raised when
  published, or in the worker for a later chain link). A task with ``**kwargs`` takes it:
  confirmed when the task ran with the option among its keyword arguments and the option had no
  effect (it ran at once despite ``countdown``/``eta``, on the run's own queue despite ``queue``).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, List, Optional, Tuple

from celery_chain_lint.harness.confirmers import (
    Claim,
    confirmed,
    confirms,
    journal_runs,
    not_reproduced,
    required,
    short,
)
from celery_chain_lint.harness.confirmers.arguments import (
    confirm_arguments,
    is_type_error,
)
from celery_chain_lint.workflow.options import EXECUTION_OPTIONS
from celery_chain_lint.workflow.replay import ReplaySignature, ReplayWorkflow, rewrite, walk


def _misplaced(workflow: ReplayWorkflow,
               line: Optional[int]) -> Tuple[Optional[str], List[str]]:
    """(task, option keywords) of the call the finding is about."""
    candidates = []
    application, canvas = workflow.application, workflow.canvas
    if isinstance(canvas, ReplaySignature) and application is not None and application.kwargs:
        keys = [k for k in application.kwargs if k in EXECUTION_OPTIONS]
        if keys:
            candidates.append((canvas.line, canvas.task, keys))
    for node in walk(canvas):
        if isinstance(node, ReplaySignature) and node.kwargs:
            keys = [k for k in node.kwargs if k in EXECUTION_OPTIONS]
            if keys:
                candidates.append((node.line, node.task, keys))
    if not candidates:
        return None, []
    for found_line, task, keys in candidates:
        if line is not None and found_line == line:
            return task, keys
    return candidates[0][1], candidates[0][2]


@confirms("CCL013")
def confirm_options_as_arguments(claim: Claim, context) -> Any:
    replay = claim.replay
    workflow = required(replay.workflow, "the replay data holds no workflow")
    task, options = _misplaced(workflow, claim.line)
    required(task, "the replay data holds no execution option passed as an argument")
    spec = (replay.tasks or {}).get(task)
    if spec is None or not spec.accepts_any_keyword:
        canvas = rewrite(workflow.canvas, lambda node: replace(node, flagged=True)
                         if isinstance(node, ReplaySignature) and node.task == task else node)
        marked = replace(replay, workflow=replace(workflow, canvas=canvas))
        return confirm_arguments(replace(claim, replay=marked), context)
    run = context.run(workflow)
    evidence = context.evidence(run, predicted=claim.message)
    name = short(task)
    failures = [f for f in run.exceptions() if is_type_error(f)]
    if failures:
        return confirmed(f"{failures[0]['type']}: {failures[0]['message']}", **evidence)
    executions = journal_runs(run, task)
    if not executions:
        return not_reproduced(f"{name} did not run within {context.timeout:g}s", **evidence)
    first = executions[0]
    received = first.get("args") or {}
    delay = first.get("start", 0) - (run.start_wall or first.get("start", 0))
    evidence["measured"] = {f"{name} received": received,
                            f"{name} started after": f"{delay:.2f}s"}
    shown = ", ".join(options)
    effects = []
    if {"countdown", "eta"} & set(options):
        effects.append(f"it started {delay:.2f}s after it was sent")
    if "queue" in options:
        effects.append(f"it ran from the run's own queue {context.env.queue}")
    if "expires" in options:
        effects.append("it ran whatever the expiry")
    detail = "; ".join(effects) or "the options had no effect"
    return confirmed(f"{name} ran with {shown} among its keyword arguments ({received}): "
                     f"{detail}", **evidence)
