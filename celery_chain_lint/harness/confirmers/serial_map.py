"""CCL024 serial-map: the mapped (or chunked) fan-out is timed against a group of signatures.

The task's shadow sleeps a fixed time. The flagged ``group([task.map(items)])`` (the chord
header's member is replayed in a group: the serial part is the same) or
``task.chunks(items, n)`` runs first, then ``group(task.s(item) for item in items)``.
Confirmed when the flagged form ran every item one after another (the shadow journal: one
execution at a time, inside fewer Celery tasks than items) and took about the sum of the
sleeps, while the group took about one sleep. Items not known statically are three stand-ins.
"""
from __future__ import annotations

from typing import Any, Dict, List

from celery_chain_lint.harness.confirmers import (
    confirmed,
    confirms,
    not_reproduced,
    skipped,
)

STEP_SECONDS = 0.2


def _serial(entries: List[Dict[str, Any]]) -> bool:
    """No two executions overlapped in time."""
    spans = sorted((e.get("start", 0), e.get("end", 0)) for e in entries)
    return all(later[0] >= earlier[1] - 0.01 for earlier, later in zip(spans, spans[1:]))


@confirms("CCL024")
def confirm_serial_map(finding: Dict[str, Any], context) -> Any:
    replay = finding.get("replay")
    task = (replay or {}).get("task") or {}
    name = task.get("name")
    if not name:
        return skipped("the finding carries no replay data naming the task")
    how = replay.get("how") or "map"
    items = replay.get("items")
    mapped = {"type": "map", "task": name, "how": how, "items": items,
              "size": replay.get("size")}
    canvas = mapped if how == "chunks" else {"type": "group", "members": [mapped]}
    tasks = replay.get("tasks") or {name: task}
    behaviours = {name: {"sleep": STEP_SECONDS}}
    count = len(items) if items is not None else 3
    timeout = max(context.timeout, STEP_SECONDS * count * 3 + 2)
    flagged = context.run({"canvas": canvas, "application": None, "callbacks": [],
                           "tasks": tasks}, behaviours, timeout=timeout)
    evidence = context.evidence(flagged, predicted=finding.get("message"))
    if flagged.worker_died:
        return skipped(f"the worker {flagged.worker_died} during the run", **evidence)
    failures = flagged.exceptions()
    if failures:
        first = failures[0]
        return not_reproduced(f"the {how} failed: {first['type']}: {first['message']}",
                              **evidence)
    # The same items, one signature each: the fan-out that was meant.
    members = []
    for item in (items if items is not None else [None] * count):
        if item is None:
            args = None
        elif how == "map":
            args = [item]
        else:
            literal = item.get("literal") if isinstance(item, dict) else None
            args = [{"literal": v} for v in literal] if isinstance(literal, list) else None
        members.append({"type": "signature", "task": name, "args": args or [], "kwargs": {},
                        "immutable": args is None, "via": "s", "flagged": args is not None,
                        "options": {}})
    fanned = context.run({"canvas": {"type": "group", "members": members},
                          "application": None, "callbacks": [], "tasks": tasks},
                         behaviours, timeout=timeout, repair=any(not m["flagged"]
                                                                 for m in members))
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
