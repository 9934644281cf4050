"""CCL027 unbounded-chord-unlock: a header that never completes, on a backend that polls.

The harness's own backends count header results (Redis, and the embedded file-system backend,
which implements ``incr``), so the chord is replayed on a worker of its own, on a queue of its
own (``ccl-verify-<id>.poll``), with Celery's plain ``file://`` backend in the run's directory,
which waits with ``celery.chord_unlock`` as the app's backend does. The first header task's
shadow runs past the observation window (as a lost or killed task never ends; it ends later,
so that nothing keeps polling after the finding); every retry of ``celery.chord_unlock`` is
journaled by the worker. Confirmed when, as written (no ``max_retries``), the body is still
PENDING at the end of the window while ``chord_unlock`` kept retrying, and the same chord
applied with ``max_retries=3`` gives up with its body FAILURE while the header still runs.
"""
from __future__ import annotations

import copy
from typing import Any, Dict

from celery_chain_lint.harness.confirmers import (
    confirmed,
    confirms,
    not_reproduced,
    skipped,
)

WINDOW = 1.5
BOUNDED = 3


def _body(run):
    nodes = run.built.nodes if run.built else []
    return nodes[-1] if nodes else None


@confirms("CCL027")
def confirm_unbounded_chord_unlock(finding: Dict[str, Any], context) -> Any:
    replay = finding.get("replay")
    if not replay or not replay.get("pending"):
        return skipped("the finding carries no replay data naming a header task")
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
    behaviours = {replay["pending"][0]: {"hang": WINDOW + 1.0}}
    as_written = session.run(replay, behaviours, until="timeout", timeout=WINDOW, recover=False)
    evidence = context.evidence(as_written, predicted=finding.get("message"))
    if as_written.worker_died:
        return skipped(f"the worker {as_written.worker_died} during the run", **evidence)
    if as_written.raised is not None:
        return not_reproduced(f"applying the chord raised {type(as_written.raised).__name__}: "
                              f"{as_written.raised}", **evidence)
    body = _body(as_written)
    pending = as_written.observation.state(body.id) if body else None
    retries = [e for e in session.journal.read() if e.get("task") == "celery.chord_unlock"
               and body is not None and e.get("body") == body.id]
    # The same chord, bounded.
    bounded = copy.deepcopy(replay)
    bounded["application"] = {"how": "apply_async", "args": [], "kwargs": {},
                              "options": {"max_retries": BOUNDED}}
    second = session.run(bounded, behaviours, timeout=WINDOW + 2, settle=0.3, recover=False)
    second_body = _body(second)
    state = second.observation.states.get(second_body.id, {}) if second_body and \
        second.observation else {}
    evidence["measured"] = {
        "as written": {"body after": f"{WINDOW:g}s: {pending}",
                       "chord_unlock retries": len(retries)},
        f"apply_async(max_retries={BOUNDED})": {"body": state.get("state"),
                                                  "exception": (state.get("exception") or "")[:200] or None},
    }
    evidence.setdefault("notes", []).append(
        f"header task {replay['pending'][0].rsplit('.', 1)[-1]} replayed running for "
        f"{WINDOW + 1.0:g}s, past the window; Celery's file:// backend (chord_unlock polls "
        f"every 0.2 s here: result_chord_retry_interval) on the queue {queue}")
    if pending == "PENDING" and len(retries) >= 3 and state.get("state") == "FAILURE":
        return confirmed(f"as written, the body stayed PENDING while celery.chord_unlock "
                         f"retried {len(retries)} times in {WINDOW:g}s, with no limit; applied "
                         f"with max_retries={BOUNDED} the body ended FAILURE "
                         f"({(state.get('exception') or '')[:90]})", **evidence)
    return not_reproduced(f"as written the body was {pending} after {len(retries)} "
                          f"chord_unlock retries; bounded, it ended {state.get('state')}",
                          **evidence)
