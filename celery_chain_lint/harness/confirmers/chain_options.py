"""CCL025 chain-options-first-task: the chain is applied with the flagged options, as written.

``queue=`` is replayed as the run's second queue (``ccl-verify-<id>.alt``, which the worker also
consumes); other values as in the source (stand-ins when not literal). Each shadow records the
options its message arrived with (routing key, priority, expiry, time limits). Confirmed when the
first task received the option and every later task the finding names did not.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Dict, Optional

from celery_chain_lint.harness.confirmers import (
    Claim,
    confirmed,
    confirms,
    first_task,
    not_reproduced,
    required,
)


def _received(entry: Dict[str, Any], key: str, applied: Any) -> Optional[Any]:
    """What the message carried for option ``key`` (None: nothing)."""
    options = entry.get("options") or {}
    if key == "queue":
        routing = options.get("routing_key")
        return routing if routing == applied else None
    if key == "priority":
        return options.get("priority") or None
    if key == "expires":
        return options.get("expires")
    limits = options.get("time_limit") or [None, None]
    return limits[0] if key == "time_limit" else limits[1]


def _shown(entry: Dict[str, Any], key: str, received: Any) -> Any:
    if key == "queue":  # where it came from, whether or not it is the queue applied
        return f"routing key {(entry.get('options') or {}).get('routing_key')}"
    return received


@confirms("CCL025")
def confirm_chain_options(claim: Claim, context) -> Any:
    why = "the finding carries no replay data naming the options"
    workflow = required(claim.replay.workflow, why)
    application = required(workflow.application, why)
    applied = required(application.options, why)
    losing = required(claim.replay.losing, why)
    options = dict(applied)
    if "queue" in options:
        options["queue"] = context.session.env.alt_queue
    workflow = replace(workflow, application=replace(application, options=options))
    run = context.run(workflow, settle=0.3)
    evidence = context.evidence(run, predicted=claim.message)
    failures = run.exceptions()
    if failures:
        first = failures[0]
        return not_reproduced(f"the chain failed: {first['type']}: {first['message']}",
                              **evidence)
    nodes = run.built.nodes if run.built else []
    by_id = {e.get("id"): e for e in run.journal}
    first_name = first_task(workflow.canvas)
    first_node = next((n for n in nodes if n.task == first_name), None)
    if first_node is None or first_node.id not in by_id:
        return not_reproduced("the first task did not run", **evidence)
    measured: Dict[str, Any] = {}
    reached_first, lost_later = [], []
    for key, value in options.items():
        got = _received(by_id[first_node.id], key, value)
        measured[f"{key} on {first_node.role}"] = _shown(by_id[first_node.id], key, got)
        if got is not None:
            reached_first.append(key)
        for node in nodes:
            if node is first_node or node.task not in (losing.get(key) or ()):
                continue
            entry = by_id.get(node.id)
            if entry is None:
                continue
            later = _received(entry, key, value)
            measured[f"{key} on {node.role}"] = _shown(entry, key, later)
            if later is None:
                lost_later.append(f"{node.task.rsplit('.', 1)[-1]} ({key})")
    evidence["measured"] = measured
    if "queue" in options:
        evidence.setdefault("notes", []).append(
            f"queue={applied['queue']!r} replayed as the run's second queue "
            f"{options['queue']!r}, which the worker also consumes")
    if reached_first and lost_later:
        return confirmed(f"the first task received {', '.join(reached_first)}; the later "
                         f"tasks ran without it: {', '.join(lost_later)}", **evidence)
    return not_reproduced(f"first task received {reached_first or 'nothing'}; later tasks "
                          f"without the option: {lost_later or 'none'}", **evidence)
