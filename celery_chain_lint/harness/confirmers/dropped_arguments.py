"""CCL020 arguments-to-immutable: the canvas is applied with its arguments, as in the source.

Confirmed when the workflow ran clean and the first receiving (immutable) task ran with its own
arguments only: none of the values the canvas was applied with reached it (shadow journal).
"""
from __future__ import annotations

from typing import Any, Dict

from celery_chain_lint.harness.confirmers import (
    confirmed,
    confirms,
    journal_runs,
    not_reproduced,
    skipped,
)
from celery_chain_lint.harness.replayer import value


@confirms("CCL020")
def confirm_dropped_arguments(finding: Dict[str, Any], context) -> Any:
    replay = finding.get("replay")
    if not replay or not replay.get("receivers"):
        return skipped("the finding carries no replay data naming the receiving tasks")
    application = replay.get("application") or {}
    applied = [value(v) for v in application.get("args") or ()] + \
        [value(v) for v in (application.get("kwargs") or {}).values()]
    run = context.run(replay)
    evidence = context.evidence(run, predicted=finding.get("message"))
    if run.worker_died:
        return skipped(f"the worker {run.worker_died} during the run", **evidence)
    failures = run.exceptions()
    if failures:
        first = failures[0]
        return not_reproduced(f"the workflow failed: {first['type']}: {first['message']}",
                              **evidence)
    task = replay["receivers"][0].get("task") or "?"
    short = task.rsplit(".", 1)[-1]
    executions = journal_runs(run, task)
    if not executions:
        return not_reproduced(f"{short} did not run within {context.timeout:g}s", **evidence)
    received = executions[0].get("args") or {}
    evidence["measured"] = {"applied with": applied, f"{short} received": received}
    shown = {repr(item) for item in applied} | {str(item) for item in applied}
    reached = [name for name, text in received.items() if text in shown]
    if reached:
        return not_reproduced(f"{short} received an applied value in {reached}: {received}",
                              **evidence)
    return confirmed(f"the workflow ran clean; {short} ran with {received}: the arguments "
                     f"{applied} were dropped", **evidence)
