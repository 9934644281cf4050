"""CCL024 serial-map: the mapped (or chunked) fan-out is timed against a group of signatures.

The task's shadow sleeps a fixed time. The flagged ``group([task.map(items)])`` (the chord
header's member is replayed in a group: the serial part is the same) or
``task.chunks(items, n)`` runs first, then ``group(task.s(item) for item in items)``.
Confirmed when the flagged form ran every item one after another (the shadow journal: one
execution at a time, inside fewer Celery tasks than items) and took about the sum of the
sleeps, while the group took about one sleep. Items not known statically are three stand-ins.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from celery_chain_lint.harness.confirmers import (
    Claim,
    confirmed,
    confirms,
    named_task,
    not_reproduced,
)
from celery_chain_lint.workflow.replay import (
    ReplayGroup,
    ReplayMap,
    ReplaySignature,
    ReplayValue,
    ReplayWorkflow,
)

STEP_SECONDS = 0.2


def _serial(entries: List[Dict[str, Any]]) -> bool:
    """No two executions overlapped in time."""
    spans = sorted((e.get("start", 0), e.get("end", 0)) for e in entries)
    return all(later[0] >= earlier[1] - 0.01 for earlier, later in zip(spans, spans[1:]))


@confirms("CCL024")
def confirm_serial_map(claim: Claim, context) -> Any:
    name = named_task(claim.replay, "the finding carries no replay data naming the task").name
    serial = claim.replay.mapped
    how = (serial.how if serial else None) or "map"
    items = serial.items if serial else None
    mapped = ReplayMap(name, how, items, serial.size if serial else None)
    canvas = mapped if how == "chunks" else ReplayGroup((mapped,))
    behaviours = {name: {"sleep": STEP_SECONDS}}
    count = len(items) if items is not None else 3
    timeout = max(context.timeout, STEP_SECONDS * count * 3 + 2)
    flagged = context.run(ReplayWorkflow(canvas), behaviours, timeout=timeout)
    evidence = context.evidence(flagged, predicted=claim.message)
    failures = flagged.exceptions()
    if failures:
        first = failures[0]
        return not_reproduced(f"the {how} failed: {first['type']}: {first['message']}",
                              **evidence)
    # The same items, one signature each: the fan-out that was meant.
    members = tuple(_member(name, how, item)
                    for item in (items if items is not None else [None] * count))
    fanned = context.run(ReplayWorkflow(ReplayGroup(members)), behaviours, timeout=timeout,
                         repair=any(not m.flagged for m in members))
    executions = [e for e in flagged.journal if e.get("task") == name]
    celery_tasks = len(flagged.built.nodes) if flagged.built else 0
    evidence["group_workflow"] = fanned.built.text if fanned.built else None
    evidence["timings"].update({"task_seconds": STEP_SECONDS, "items": count,
                                f"{how}_s": round(flagged.elapsed, 3),
                                "group_s": round(fanned.elapsed, 3)})
    evidence["measured"] = {f"{how}": f"{flagged.elapsed:.2f}s, {len(executions)} item(s) in "
                                      f"{celery_tasks} Celery task(s)",
                            "group of signatures": f"{fanned.elapsed:.2f}s"}
    if items is None:
        evidence.setdefault("notes", []).append(
            f"the items are not literal in the source: replayed over {count} stand-ins")
    serial = len(executions) >= 2 and _serial(executions) and celery_tasks < len(executions) \
        and flagged.elapsed >= STEP_SECONDS * len(executions) * 0.9
    faster = fanned.elapsed < flagged.elapsed * 0.75
    if serial and faster:
        return confirmed(f"the {how} ran its {len(executions)} items one after another in "
                         f"{celery_tasks} Celery task(s) and took {flagged.elapsed:.2f}s; the same "
                         f"items as a group of signatures took {fanned.elapsed:.2f}s", **evidence)
    return not_reproduced(f"the {how} took {flagged.elapsed:.2f}s ({len(executions)} items in "
                          f"{celery_tasks} task(s)), the group {fanned.elapsed:.2f}s",
                          **evidence)


def _member(name: str, how: str, item: Optional[ReplayValue]) -> ReplaySignature:
    """``task.s(item)`` (``task.s(*item)`` for starmap and chunks); an item not known, or not a
    literal list to star, is replayed with complete arguments (immutable, unflagged)."""
    args = None
    if item is not None and how == "map":
        args = (item,)
    elif item is not None and item.is_literal and isinstance(item.content, list):
        args = tuple(ReplayValue.literal(v) for v in item.content)
    return ReplaySignature(name, args or (), immutable=args is None, flagged=args is not None)
