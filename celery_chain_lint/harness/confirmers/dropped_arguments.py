"""CCL020 arguments-to-immutable: the canvas is applied with its arguments, as in the source.

Confirmed when the workflow ran clean and the first receiving (immutable) task ran with its own
arguments only: none of the values the canvas was applied with reached it (shadow journal).
"""
from __future__ import annotations

from typing import Any

from celery_chain_lint.harness.confirmers import (
    Claim,
    confirmed,
    confirms,
    journal_runs,
    not_reproduced,
    required,
    short,
)


@confirms("CCL020")
def confirm_dropped_arguments(claim: Claim, context) -> Any:
    receivers = required(claim.replay.receivers, "the finding carries no replay data naming "
                                                 "the receiving tasks")
    workflow = required(claim.replay.workflow, "the replay data holds no workflow")
    application = workflow.application
    applied = [] if application is None else \
        [v.shown() for v in application.args or ()] + \
        [v.shown() for v in (application.kwargs or {}).values()]
    run = context.run(workflow)
    evidence = context.evidence(run, predicted=claim.message)
    failures = run.exceptions()
    if failures:
        first = failures[0]
        return not_reproduced(f"the workflow failed: {first['type']}: {first['message']}",
                              **evidence)
    task = receivers[0].task or "?"
    name = short(task)
    executions = journal_runs(run, task)
    if not executions:
        return not_reproduced(f"{name} did not run within {context.timeout:g}s", **evidence)
    received = executions[0].get("args") or {}
    evidence["measured"] = {"applied with": applied, f"{name} received": received}
    shown = {repr(item) for item in applied} | {str(item) for item in applied}
    reached = [name for name, text in received.items() if text in shown]
    if reached:
        return not_reproduced(f"{name} received an applied value in {reached}: {received}",
                              **evidence)
    return confirmed(f"the workflow ran clean; {name} ran with {received}: the arguments "
                     f"{applied} were dropped", **evidence)
