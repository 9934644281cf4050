"""A task's options as Celery sees them: decorator keywords over its base classes' attributes.

``@app.task(base=RetryingTask, max_retries=5)`` takes ``autoretry_for`` from ``RetryingTask``
(and its ancestors) and ``max_retries`` from the decorator. Returns None when a base class
cannot be read (a mixin from a library, an unresolved ``base=``): its attributes may set
anything, and when the task takes its class from an app whose default task class is
replaced (``Celery(task_cls=...)``, ``app.Task = ...``): that class's attributes are not read.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional

from celery_chain_lint.facts import ir
from celery_chain_lint.index.apps import app_index
from celery_chain_lint.index.symbols import ClassSym

if TYPE_CHECKING:
    from celery_chain_lint.index.resolver import Resolver
    from celery_chain_lint.index.tasks import Task

MAX_BASES = 20


def effective_options(resolver: "Resolver", task: "Task") -> Optional[Dict[str, ir.Expr]]:
    lineage = task_lineage(resolver, task)
    if lineage is None:
        return None
    merged: Dict[str, ir.Expr] = {}
    for cls in reversed(lineage):
        merged.update(resolver.modules[cls.module].classes[cls.qualname].attributes)
    merged.update(task.options)
    return merged


def task_lineage(resolver: "Resolver", task: "Task") -> Optional[List[ClassSym]]:
    """The project classes a task is made of, its own (or ``base=``) first, then each one's
    base; None when one cannot be read (see above): what they define is then unknown."""
    if task.open_options or ("base" in task.options and task.base is None):
        return None
    if "base" not in task.options and task.class_facts is None:
        if app_index(resolver).default_class_replaced(task):
            return None
    lineage: List[ClassSym] = []
    cls = task.base
    seen = set()
    while cls is not None and (cls.module, cls.qualname) not in seen and len(lineage) < MAX_BASES:
        seen.add((cls.module, cls.qualname))
        lineage.append(cls)
        facts = resolver.modules[cls.module].classes.get(cls.qualname)
        if facts is None:
            return None
        parent = None
        for base in facts.bases:
            symbol = resolver.resolve(base, cls.module)
            if isinstance(symbol, ClassSym):
                if parent is not None:
                    return None  # several project bases: the MRO is not modelled
                parent = symbol
            elif not resolver.is_task_base(symbol):
                return None  # a mixin or a library class: its attributes are unknown
        cls = parent
    return lineage
