"""CCL013 options-as-arguments.

- CCL013: the call is replayed as written. A task without ``**kwargs`` refuses the keyword:
  confirmed on Celery's ``TypeError: ... unexpected keyword argument 'countdown'`` (raised when
  published, or in the worker for a later chain link). A task with ``**kwargs`` takes it:
  confirmed when the task ran with the option among its keyword arguments and the option had no
  effect (it ran at once despite ``countdown``/``eta``, on the run's own queue despite ``queue``).
"""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Tuple

from celery_chain_lint.harness.confirmers import (
    confirmed,
    confirms,
    journal_runs,
    not_reproduced,
    skipped,
    walk,
)
from celery_chain_lint.workflow.options import EXECUTION_OPTIONS
from celery_chain_lint.harness.confirmers.arguments import (
    confirm_arguments,
    is_type_error,
)


def _misplaced(replay: Dict[str, Any], line: Optional[int]) -> Tuple[Optional[str], List[str]]:
    """(task, option keywords) of the call the finding is about."""
    candidates = []
    application = replay.get("application") or {}
    canvas = replay.get("canvas") or {}
    if canvas.get("type") == "signature" and application.get("kwargs"):
        keys = [k for k in application["kwargs"] if k in EXECUTION_OPTIONS]
        if keys:
            candidates.append((canvas.get("line"), canvas.get("task"), keys))
    for node in walk(canvas):
        if node.get("type") == "signature" and node.get("kwargs"):
            keys = [k for k in node["kwargs"] if k in EXECUTION_OPTIONS]
            if keys:
                candidates.append((node.get("line"), node.get("task"), keys))
    if not candidates:
        return None, []
    for found_line, task, keys in candidates:
        if line is not None and found_line == line:
            return task, keys
    return candidates[0][1], candidates[0][2]


def _accepts_any_keyword(spec: Dict[str, Any]) -> bool:
    return any(p.get("kind") == "var-keyword" for p in spec.get("params") or ())


@confirms("CCL013")
def confirm_options_as_arguments(finding: Dict[str, Any], context) -> Any:
    replay = finding.get("replay")
    if not replay:
        return skipped("the finding carries no replay data")
    task, options = _misplaced(replay, finding.get("line"))
    if task is None:
        return skipped("the replay data holds no execution option passed as an argument")
    spec = (replay.get("tasks") or {}).get(task) or {}
    if not _accepts_any_keyword(spec):
        marked = copy.deepcopy(replay)
        for node in walk(marked.get("canvas")):
            if node.get("type") == "signature" and node.get("task") == task:
                node["flagged"] = True
        return confirm_arguments(dict(finding, replay=marked), context)
    run = context.run(replay)
    evidence = context.evidence(run, predicted=finding.get("message"))
    if run.worker_died:
        return skipped(f"the worker {run.worker_died} during the run", **evidence)
    short = task.rsplit(".", 1)[-1]
    failures = [f for f in run.exceptions() if is_type_error(f)]
    if failures:
        return confirmed(f"{failures[0]['type']}: {failures[0]['message']}", **evidence)
    executions = journal_runs(run, task)
    if not executions:
        return not_reproduced(f"{short} did not run within {context.timeout:g}s", **evidence)
    first = executions[0]
    received = first.get("args") or {}
    delay = first.get("start", 0) - (run.start_wall or first.get("start", 0))
    evidence["measured"] = {f"{short} received": received,
                            f"{short} started after": f"{delay:.2f}s"}
    shown = ", ".join(options)
    effects = []
    if {"countdown", "eta"} & set(options):
        effects.append(f"it started {delay:.2f}s after it was sent")
    if "queue" in options:
        effects.append(f"it ran from the run's own queue {context.env.queue}")
    if "expires" in options:
        effects.append("it ran whatever the expiry")
    detail = "; ".join(effects) or "the options had no effect"
    return confirmed(f"{short} ran with {shown} among its keyword arguments ({received}): "
                     f"{detail}", **evidence)
