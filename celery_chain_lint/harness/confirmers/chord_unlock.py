"""CCL027 unbounded-chord-unlock: a header that never completes, on a backend that polls.

The harness's own backends count header results (Redis, and the embedded file-system backend,
which implements ``incr``), so the chord is replayed on a worker of its own, on a queue of its
own (``ccl-verify-<id>.poll``), with Celery's plain ``file://`` backend in the run's directory,
which waits with ``celery.chord_unlock`` as the app's backend does. The first header task's
shadow runs for 3 s, past the observation (as a lost or killed task never ends; it ends later,
so that nothing keeps polling after the finding); every retry of ``celery.chord_unlock`` is
journaled by the worker. Confirmed when, as written (no ``max_retries``), the body is still
PENDING while ``chord_unlock`` kept retrying past 3 retries, and the same chord applied at the
same moment with ``max_retries=3`` gave up with its body FAILURE while the header still ran.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from celery_chain_lint.harness.confirmers import (
    Claim,
    confirmed,
    confirms,
    not_reproduced,
    required,
    short,
    skipped,
)
from celery_chain_lint.workflow.replay import ReplayApplication

HANG = 3.0
BOUNDED = 3


def _body(run):
    nodes = run.built.nodes if run.built else []
    return nodes[-1] if nodes else None


@confirms("CCL027")
def confirm_unbounded_chord_unlock(claim: Claim, context) -> Any:
    pending = required(claim.replay.pending, "the finding carries no replay data naming a "
                                             "header task")[0]
    workflow = required(claim.replay.workflow, "the replay data holds no workflow")
    import os

    env = context.env
    queue = f"{env.queue}.poll"
    results = os.path.join(env.workdir, "polled-results")
    os.makedirs(results, exist_ok=True)
    session = context.batch.session_with(context.verifier, "polling-backend", {
        "result_backend": f"file://{results}", "task_default_queue": queue,
        "task_default_exchange": queue, "task_default_routing_key": queue,
        "result_chord_retry_interval": 0.2,
    })
    behaviours = {pending: {"hang": HANG}}
    # The same chord bounded, applied at the same moment: it gives up while the one as written
    # keeps polling.
    bounded = replace(workflow, application=ReplayApplication(
        "apply_async", options={"max_retries": BOUNDED}))
    runs = session.run_many([workflow, bounded], timeout=HANG, settle=0.5,
                            behaviours=behaviours, recover=False)
    failed = [run for run in runs if not hasattr(run, "observation")]
    if failed:
        return skipped(f"the chord could not be rebuilt: {failed[0]}")
    as_written, second = runs
    evidence = context.evidence(as_written, predicted=claim.message)
    if as_written.raised is not None:
        return not_reproduced(f"applying the chord raised {type(as_written.raised).__name__}: "
                              f"{as_written.raised}", **evidence)
    body = _body(as_written)
    pending = as_written.observation.state(body.id) if body else None
    elapsed = as_written.observation.elapsed
    retries = [e for e in session.journal.read() if e.get("task") == "celery.chord_unlock"
               and body is not None and e.get("body") == body.id]
    second_body = _body(second)
    state = second.observation.states.get(second_body.id, {}) if second_body and \
        second.observation else {}
    evidence["measured"] = {
        "as written": {"body after": f"{elapsed:.1f}s: {pending}",
                       "chord_unlock retries": len(retries)},
        f"apply_async(max_retries={BOUNDED})": {
            "body": state.get("state"), "exception": (state.get("exception") or "")[:200] or None},
    }
    evidence.setdefault("notes", []).append(
        f"header task {short(pending)} replayed running for "
        f"{HANG:g}s, past the observation; Celery's file:// backend (chord_unlock polls "
        f"every 0.2 s here: result_chord_retry_interval) on the queue {queue}")
    if pending == "PENDING" and len(retries) > BOUNDED and state.get("state") == "FAILURE":
        return confirmed(f"as written, the body stayed PENDING while celery.chord_unlock "
                         f"retried {len(retries)} times in {elapsed:.1f}s, past the {BOUNDED} "
                         f"after which the same chord applied at the same moment with "
                         f"max_retries={BOUNDED} gave up with its body FAILURE "
                         f"({(state.get('exception') or '')[:90]})", **evidence)
    return not_reproduced(f"as written the body was {pending} after {len(retries)} "
                          f"chord_unlock retries; bounded, it ended {state.get('state')}",
                          **evidence)
