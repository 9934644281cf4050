"""``--show-coverage``: what the analyser saw of each project, one line each (and the total)."""
from __future__ import annotations

import os
from typing import List


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def line(seen) -> str:
    """``1 app, 16 of 16 task-decorated functions indexed, 12 canvas sites: 10 modelled, 2
    unknown (1 unresolved name, 1 splat)``."""
    unknown = sum(seen.unknown.values())
    reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(seen.unknown.items()))
    text = (f"{_plural(seen.apps, 'app')}, {seen.tasks} of "
            f"{_plural(seen.task_like, 'task-decorated function')} indexed as tasks, "
            f"{_plural(seen.sites, 'canvas site')}: {seen.modelled} modelled, {unknown} unknown")
    text += f" ({reasons})" if reasons else ""
    if seen.root:
        text = f"{_display(seen.root)}: {text}"
    return f"{text}; {_plural(seen.files, 'file')}"


def render(coverage: List) -> str:
    """One line per project that holds anything Celery-related (a tree of several projects
    lists only those), and the total when there are several."""
    shown = [seen for seen in coverage if seen.apps or seen.task_like or seen.sites] \
        if len(coverage) > 1 else coverage
    lines = [f"Coverage: {line(seen)}" for seen in shown]
    if len(coverage) > 1:
        total = coverage[0]
        for seen in coverage[1:]:
            total = total.add(seen)
        lines.append(f"Coverage (all {len(coverage)} projects): {line(total)}")
    return "\n".join(lines) + "\n" if lines else ""


def _display(root: str) -> str:
    relative = os.path.relpath(root) if os.path.isabs(root) else root
    return root if relative.startswith("..") else relative
