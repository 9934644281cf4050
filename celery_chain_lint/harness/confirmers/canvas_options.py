"""CCL019 canvas-options-as-arguments: the canvas is applied as written, options and all.

A receiving task that refuses the keyword: confirmed on Celery's ``TypeError: ... unexpected
keyword argument 'countdown'`` (raised when the canvas is published), through the CCL001/CCL002
confirmer with that task flagged. Otherwise (``**kwargs``, or an immutable task that drops
them): confirmed when the receiving task ran at once, with the option among its keyword
arguments (``**kwargs``) or without it (immutable), i.e. the option had no effect.
"""
from __future__ import annotations

from dataclasses import replace
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
from celery_chain_lint.harness.confirmers.arguments import confirm_arguments, is_type_error
from celery_chain_lint.workflow.replay import Receiver, Replay, ReplaySignature, rewrite, walk

# A countdown or eta that had any effect would hold the task back at least this long.
AT_ONCE = 1.0


@confirms("CCL019")
def confirm_canvas_options(claim: Claim, context) -> Any:
    replay = claim.replay
    receivers = required(replay.receivers, "the finding carries no replay data naming the "
                                           "receiving tasks")
    workflow = required(replay.workflow, "the replay data holds no workflow")
    options = replay.options or ()
    refused = [r for r in receivers if r.effect == "refused"]
    if refused:
        return confirm_arguments(replace(claim, replay=_flag(replay, refused[0])), context)
    run = context.run(workflow)
    evidence = context.evidence(run, predicted=claim.message)
    failures = run.exceptions()
    if failures:
        first = failures[0]
        kind = "a TypeError" if is_type_error(first) else "a failure"
        return not_reproduced(f"{kind} instead of an ignored option: {first['type']}: "
                              f"{first['message']}", **evidence)
    receiver = receivers[0]
    task = receiver.task or "?"
    name = short(task)
    executions = journal_runs(run, task)
    if not executions:
        return not_reproduced(f"{name} did not run within {context.timeout:g}s: the option "
                              "may have taken effect", **evidence)
    first = executions[0]
    received = first.get("args") or {}
    delay = first.get("start", 0) - (run.start_wall or first.get("start", 0))
    evidence["measured"] = {f"{name} received": received,
                            f"{name} started after": f"{delay:.2f}s"}
    if delay > AT_ONCE and {"countdown", "eta"} & set(options):
        return not_reproduced(f"{name} started {delay:.2f}s after the canvas was applied: "
                              "the delay took effect", **evidence)
    shown = ", ".join(options)
    if receiver.effect == "dropped":
        how = f"ran without {shown} (immutable: the keywords were dropped)"
    else:
        how = f"ran with {shown} among its keyword arguments ({received})"
    return confirmed(f"{name} {how} and started {delay:.2f}s after the canvas was applied: "
                     "the option had no effect", **evidence)


def _flag(replay: Replay, receiver: Receiver) -> Replay:
    """The replay with the refusing task flagged (its first signature on the receiver's line),
    for the TypeError confirmer."""
    target = next((node for node in walk(replay.workflow.canvas)
                   if isinstance(node, ReplaySignature) and node.task == receiver.task
                   and node.line == receiver.line), None)
    canvas = rewrite(replay.workflow.canvas,
                     lambda node: replace(node, flagged=True) if node is target else node)
    return replace(replay, workflow=replace(replay.workflow, canvas=canvas))
