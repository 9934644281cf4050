"""CCL019 canvas-options-as-arguments: the canvas is applied as written, options and all.

A receiving task that refuses the keyword: confirmed on Celery's ``TypeError: ... unexpected
keyword argument 'countdown'`` (raised when the canvas is published), through the CCL001/CCL002
confirmer with that task flagged. Otherwise (``**kwargs``, or an immutable task that drops
them): confirmed when the receiving task ran at once, with the option among its keyword
arguments (``**kwargs``) or without it (immutable), i.e. the option had no effect.
"""
from __future__ import annotations

import copy
from typing import Any, Dict

from celery_chain_lint.harness.confirmers import (
    confirmed,
    confirms,
    journal_runs,
    not_reproduced,
    skipped,
    walk,
)
from celery_chain_lint.harness.confirmers.arguments import confirm_arguments, is_type_error

# A countdown or eta that had any effect would hold the task back at least this long.
AT_ONCE = 1.0


@confirms("CCL019")
def confirm_canvas_options(finding: Dict[str, Any], context) -> Any:
    replay = finding.get("replay")
    if not replay or not replay.get("receivers"):
        return skipped("the finding carries no replay data naming the receiving tasks")
    options = replay.get("options") or []
    refused = [r for r in replay["receivers"] if r.get("effect") == "refused"]
    if refused:
        return confirm_arguments(dict(finding, replay=_flag(replay, refused[0])), context)
    run = context.run(replay)
    evidence = context.evidence(run, predicted=finding.get("message"))
    if run.worker_died:
        return skipped(f"the worker {run.worker_died} during the run", **evidence)
    failures = run.exceptions()
    if failures:
        first = failures[0]
        kind = "a TypeError" if is_type_error(first) else "a failure"
        return not_reproduced(f"{kind} instead of an ignored option: {first['type']}: "
                              f"{first['message']}", **evidence)
    receiver = replay["receivers"][0]
    task = receiver.get("task") or "?"
    short = task.rsplit(".", 1)[-1]
    executions = journal_runs(run, task)
    if not executions:
        return not_reproduced(f"{short} did not run within {context.timeout:g}s: the option "
                              "may have taken effect", **evidence)
    first = executions[0]
    received = first.get("args") or {}
    delay = first.get("start", 0) - (run.start_wall or first.get("start", 0))
    evidence["measured"] = {f"{short} received": received,
                            f"{short} started after": f"{delay:.2f}s"}
    if delay > AT_ONCE and {"countdown", "eta"} & set(options):
        return not_reproduced(f"{short} started {delay:.2f}s after the canvas was applied: "
                              "the delay took effect", **evidence)
    shown = ", ".join(options)
    if receiver.get("effect") == "dropped":
        how = f"ran without {shown} (immutable: the keywords were dropped)"
    else:
        how = f"ran with {shown} among its keyword arguments ({received})"
    return confirmed(f"{short} {how} and started {delay:.2f}s after the canvas was applied: "
                     "the option had no effect", **evidence)


def _flag(replay: Dict[str, Any], receiver: Dict[str, Any]) -> Dict[str, Any]:
    """The replay with the refusing task flagged, for the TypeError confirmer."""
    marked = copy.deepcopy(replay)
    for node in walk(marked.get("canvas")):
        if node.get("type") == "signature" and node.get("task") == receiver.get("task") \
                and node.get("line") == receiver.get("line"):
            node["flagged"] = True
            break
    return marked
