"""CCL007 called-not-signature: a task called where the workflow expects a signature.

The workflow is rebuilt as the source writes it: the called task really is sent with
``delay``/``apply_async`` (or run in this process for ``task(...)``) before the canvas is
composed, exactly as the source would. Confirmed when composing or applying the workflow fails
(``TypeError: unsupported operand type(s) for |`` and the like), or when it runs but the called
task ran outside it; the evidence shows that the called task already ran.
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


@confirms("CCL007")
def confirm_called_not_signature(claim: Claim, context) -> Any:
    workflow = required(claim.replay.workflow, "the replay data holds no workflow")
    called = claim.replay.called
    name = called.task if called else None
    run = context.run(workflow, repair=True)
    evidence = context.evidence(run, predicted=claim.message)
    task = short(name, "the task")
    outside = journal_runs(run, name) if name else []
    where = {e.get("pid") for e in outside}
    ran = ""
    if outside:
        how = called.how
        ran = (f"; {task} had already run ({len(outside)} time(s)) "
               + ("in the calling process" if how == "call" else "on the worker, outside the "
                  "workflow"))
    evidence["measured"] = {f"{task} runs": len(outside), "processes": sorted(where)}
    if run.raised is not None:
        evidence["exception"] = {"type": type(run.raised).__name__, "message": str(run.raised),
                                 "where": f"raised in the caller while {run.raised_at_text()}"}
        return confirmed(f"{type(run.raised).__name__}: {run.raised}{ran}", **evidence)
    failures = run.exceptions()
    if failures:
        first = failures[0]
        evidence["exception"] = {"type": first["type"], "message": first["message"],
                                 "where": first["where"]}
        return confirmed(f"{first['type']}: {first['message']}{ran}", **evidence)
    if outside:
        return confirmed(f"the workflow ran, but {task} ran outside it{ran}", **evidence)
    return not_reproduced("the workflow was built and ran normally", **evidence)
