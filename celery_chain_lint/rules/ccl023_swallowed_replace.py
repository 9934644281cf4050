"""CCL023 swallowed-replace: ``self.replace()`` inside a broad ``except`` that does not re-raise.

## What it does
Flags a call to ``self.replace(...)`` in a task whose enclosing ``try`` catches ``Exception``,
``BaseException``, everything (bare ``except:``) or Celery's ``Ignore`` (or its bases
``TaskPredicate``, ``CeleryError``) and does not re-raise, and one inside
``with contextlib.suppress(Exception):``, as CCL012 does for ``self.retry()``. A clause that
re-raises lets it through; a clause naming only other exceptions (``except ValueError:``) is
not reported, nor one naming an exception class the analyser cannot resolve.

## Why is this bad?
``Task.replace(sig)`` freezes the replacement with the task's own id, sends it, and then raises
``celery.exceptions.Ignore`` so that the worker stops the task without storing a result: the
replacement's result becomes the task's. ``Ignore`` is an ``Exception``: a broad handler catches
it, the task body goes on and returns normally, and the task is stored SUCCESS with its own
return value while the replacement runs under the same id. In a chain, Celery also moved the
rest of the chain onto the replacement, and the task that went on sends it too: the rest of the
chain runs twice. Observed on Celery 5.7.0 (Redis broker and backend, threads worker):
``chain(host.s(1), after.s())`` whose ``host`` does ``try: self.replace(ident.s(x * 10))
except Exception: pass`` then ``return "host-continued"``: ``host`` caught
``Ignore('Replaced by new task')``, went on, ``ident`` ran under ``host``'s id, and ``after`` ran
twice, with ``"host-continued"`` and with ``10``; alone, ``host``'s result read
``"host-continued"`` (the replacement's ``10`` was never stored). With ``except Exception:
raise``, ``after`` ran once, with ``10``.

## Example
```python
@app.task(bind=True)
def resize(self, image_id):
    try:
        if too_big(image_id):
            return self.replace(split.s(image_id))
        return shrink(image_id)
    except Exception:
        logger.exception("resize failed")
        return None
```

## How to fix
Call ``self.replace()`` outside the broad handler, or let ``Ignore`` through first:
```python
from celery.exceptions import Ignore

    except Ignore:
        raise
    except Exception:
        logger.exception("resize failed")
```
"""
from __future__ import annotations

from typing import Iterator

from celery_chain_lint.facts import ir
from celery_chain_lint.rules.base import Rule
from celery_chain_lint.rules.ccl012_swallowed_retry import swallowed_task_calls

# Exception classes an ``except`` clause can name that catch ``celery.exceptions.Ignore``.
CATCHES_IGNORE = frozenset({
    "builtins.Exception", "builtins.BaseException",
    "celery.exceptions.Ignore", "celery.exceptions.TaskPredicate",
    "celery.exceptions.CeleryError",
})

_APP = """\
from celery import Celery
from celery.exceptions import Ignore, Retry
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def split(image_id):
    return [image_id]
"""


class SwallowedReplace(Rule):
    code = "CCL023"
    name = "swallowed-replace"
    summary = ("self.replace() inside a broad except that does not re-raise: the task goes on "
               "after sending its replacement, and the rest of its chain runs twice")

    VALID = [
        _APP + """
@app.task(bind=True)
def resize(self, image_id):
    return self.replace(split.s(image_id))
""",
        _APP + """
@app.task(bind=True)
def resize(self, image_id):
    try:
        return self.replace(split.s(image_id))
    except Ignore:
        raise
    except Exception:
        return None
""",
        _APP + """
@app.task(bind=True)
def resize(self, image_id):
    try:
        return self.replace(split.s(image_id))
    except (ValueError, Retry):
        return None
""",
        _APP + """
@app.task(bind=True)
def rename(self, name):
    try:
        return name.replace("a", "b")
    except Exception:
        return None
""",
        _APP + """
@app.task(bind=True)
def resize(self, image_id):
    try:
        return self.replace(split.s(image_id))
    except Exception:
        raise
""",
    ]
    INVALID = [
        _APP + """
@app.task(bind=True)
def resize(self, image_id):
    try:
        return self.replace(split.s(image_id))  # expect: CCL023
    except Exception:
        return None
""",
        _APP + """
import contextlib

@app.task(bind=True)
def resize(self, image_id):
    with contextlib.suppress(Exception):
        self.replace(split.s(image_id))  # expect: CCL023
    return "done"
""",
        _APP + """
@app.task(bind=True)
def resize(task, image_id):
    try:
        task.replace(split.s(image_id))  # expect: CCL023
    except:
        pass
""",
    ]

    def check(self, project) -> Iterator:
        for swallowed in swallowed_task_calls(project, "replace", CATCHES_IGNORE,
                                              _one_canvas):
            task, call = swallowed.task, swallowed.call
            message = (f"{call.text or 'replace()'} sends the replacement and then raises "
                       f"celery.exceptions.Ignore, an Exception: {swallowed.handler} catches "
                       f"it and does not re-raise, so {task.display} goes on and ends SUCCESS "
                       "with its own result while the replacement runs under its id (the "
                       "rest of a chain it is in runs twice); re-raise Ignore (`except "
                       "Ignore: raise`) or call it outside the handler")
            yield self.finding(task.path, call.span, message,
                               replay=swallowed.replay("replace"))


def _one_canvas(call: ir.Call) -> bool:
    return len(call.positional) == 1 and not call.has_splat
