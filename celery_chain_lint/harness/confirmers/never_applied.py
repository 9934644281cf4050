"""CCL014 canvas-never-applied: the canvas is built and not applied, as in the source:
confirmed when none of its tasks ran within the window and nothing reached the queue; a contrast run applies the same
canvas and shows its tasks running."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from celery_chain_lint.harness.confirmers import (
    Claim,
    confirmed,
    confirms,
    not_reproduced,
    required,
)
from celery_chain_lint.workflow.replay import ReplayApplication, ReplaySignature, walk

# How long nothing must run for a canvas never applied to count as never run (seconds).
NEVER_APPLIED_WINDOW = 0.4


@confirms("CCL014")
def confirm_canvas_never_applied(claim: Claim, context) -> Any:
    workflow = required(claim.replay.workflow, "the replay data holds no workflow")
    names = {n.task for n in walk(workflow.canvas) if isinstance(n, ReplaySignature)}
    names.discard(None)
    required(names, "the replay data holds no task of the canvas")
    built_only = replace(workflow, application=ReplayApplication("none"))
    run = context.run(built_only, repair=True, timeout=NEVER_APPLIED_WINDOW, until="timeout")
    evidence = context.evidence(run, predicted=claim.message)
    ran = [e for e in run.journal if e.get("task") in names]
    applied = context.run(replace(workflow, application=None), repair=True)
    ran_applied = [e for e in applied.journal if e.get("task") in names]
    evidence["measured"] = {
        f"tasks run in {NEVER_APPLIED_WINDOW:g}s after building it": len(ran),
        "tasks run once applied": f"{len(ran_applied)} within {applied.elapsed:.2f}s",
    }
    if ran:
        return not_reproduced(f"{len(ran)} task(s) of the canvas ran although it was never "
                              "applied", **evidence)
    return confirmed(f"building the canvas sent nothing: no task ran within "
                     f"{NEVER_APPLIED_WINDOW:g}s; applied, the same canvas ran "
                     f"{len(ran_applied)} task(s) in {applied.elapsed:.2f}s", **evidence)
