"""CCL027 unbounded-chord-unlock: a polled chord applied without ``max_retries=`` polls forever.

## What it does
Flags a chord applied in view (``chord(h, b).delay()``, ``chord(h, b).apply_async()``,
``chord(h)(b)``, ``(group(...) | task.s()).delay()``, a chain led by a group) without
``max_retries=`` when its app's result backend has no native chord support and so waits for the
header with Celery's ``celery.chord_unlock`` task: ``db+...``/``database``, ``mongodb``,
``file://``, ``elasticsearch``, ``couchdb``, ``couchbase``, ``cassandra``, ``cosmosdbsql``,
``arangodb``, ``s3``, ``azureblockblob``, ``consul``. Redis, memcached (``cache+``), DynamoDB
and Google Cloud Storage count header results natively: not reported; nor ``django-db``
(django-celery-results counts them natively since 2.0), a backend that cannot be read, a chord
further down a chain (``apply_async`` options reach the first task only), or a call that names
``max_retries`` anywhere (``chord(...).set(max_retries=5)``).

## Why is this bad?
On such a backend, ``chord.run`` sends ``celery.chord_unlock``, which checks the header's
results and retries itself every ``result_chord_retry_interval`` (1 s) until they are all
ready, with ``max_retries=None`` unless the chord was applied with ``max_retries=``. When a
header task never stores a result (its message was lost, its worker was killed, it ignores
results), the unlock task retries every second, forever, and the body never runs nor fails.
Observed on Celery 5.7.0 with the file-system backend (``file://``, Redis broker): a chord whose
header held a task with ``ignore_result=True`` left its body PENDING while ``chord_unlock``
retried 9 times in 9 seconds, with no end; the same chord applied with ``max_retries=3`` ended
with the body FAILURE (``chord_unlock could not be retried: MaxRetriesExceededError``) within
4 seconds.

## Example
```python
app = Celery("proj", broker="redis://localhost:6379/0", backend="db+postgresql://localhost/proj")

chord([fetch.s(url) for url in urls], merge.s()).delay()
```

## How to fix
Bound the polling where the chord is applied (about ``max_retries`` seconds of waiting):
```python
chord([fetch.s(url) for url in urls], merge.s()).apply_async(max_retries=3600)
```
or use a backend that counts header results (Redis).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Iterator, Optional

from celery_chain_lint.facts import ir
from celery_chain_lint.index.apps import LITERAL
from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.model import (
    ChainNode,
    ChordNode,
    GroupNode,
    Node,
    signatures,
)
from celery_chain_lint.workflow.replay import PollingBackend, workflow_replay

# Result backends (URL scheme, or the part before ``+``) that wait with celery.chord_unlock:
# BaseBackend.apply_chord -> fallback_chord_unlock (celery/backends/base.py, Celery 5.7).
POLLING_BACKENDS = frozenset({
    "db", "database", "mongodb", "file", "elasticsearch", "couchdb", "couchbase", "cassandra",
    "cosmosdbsql", "arangodb", "s3", "azureblockblob", "consul",
})

_APP = """\
from celery import Celery, chain, chord, group
app = Celery("example", broker="redis://localhost:6379/0",
             backend="db+postgresql://localhost/example")

@app.task
def fetch(x):
    return x

@app.task
def merge(values):
    return values
"""


class UnboundedChordUnlock(Rule):
    code = "CCL027"
    name = "unbounded-chord-unlock"
    summary = ("a chord on a result backend that polls (database, MongoDB, file...) applied "
               "without max_retries=: celery.chord_unlock retries forever when the header "
               "never completes")

    VALID = [
        _APP + "chord([fetch.s(1), fetch.s(2)], merge.s()).apply_async(max_retries=600)\n",
        _APP + "chord([fetch.s(1), fetch.s(2)])(merge.s(), max_retries=600)\n",
        _APP + "chord([fetch.s(1), fetch.s(2)], merge.s()).set(max_retries=600).delay()\n",
        _APP + "workflow = chord([fetch.s(1), fetch.s(2)], merge.s())\n",
        _APP.replace("db+postgresql://localhost/example", "redis://localhost:6379/1")
        + "chord([fetch.s(1), fetch.s(2)], merge.s()).delay()\n",
        _APP.replace('"db+postgresql://localhost/example"', 'os.environ["BACKEND"]')
        .replace("from celery", "import os\nfrom celery", 1)
        + "chord([fetch.s(1), fetch.s(2)], merge.s()).delay()\n",
        _APP + "group(fetch.s(1), fetch.s(2)).delay()\n",
        _APP + "chord([fetch.s(1), fetch.s(2)], merge.s()).apply_async(**options)\n",
    ]
    INVALID = [
        _APP + "chord([fetch.s(1), fetch.s(2)], merge.s()).delay()  # expect: CCL027\n",
        _APP + "chord([fetch.s(1), fetch.s(2)])(merge.s())  # expect: CCL027\n",
        _APP + "(group(fetch.s(1), fetch.s(2)) | merge.s()).apply_async(countdown=5)"
               "  # expect: CCL027\n",
        _APP.replace("db+postgresql://localhost/example", "mongodb://localhost/results")
        + "chain(group(fetch.s(1), fetch.s(2)), merge.s()).delay()  # expect: CCL027\n",
    ]

    def check(self, project) -> Iterator:
        for workflow in project.workflows:
            application = workflow.application
            if application is None or application.span is None or application.how == "none":
                continue
            chord = _leading_chord(workflow.canvas)
            if chord is None or _names_max_retries(workflow.expr):
                continue
            backend = self._polling_backend(project, chord)
            if backend is None:
                continue
            url, scheme = backend
            header = chord.header if isinstance(chord, ChordNode) else chord.steps[0]
            first = next(iter(signatures(header)), None)
            # The confirmer keeps this header task running past its observation window.
            pending = (first.task.name,) if first is not None and first.task.name else ()
            replay = replace(workflow_replay(workflow), backend=PollingBackend(url, scheme),
                             pending=pending)
            message = (f"this chord's app uses the {scheme} result backend ({_short(url)}), "
                       f"which has no native chord support: Celery waits for the header with "
                       f"the celery.chord_unlock task, which retries every second "
                       f"(result_chord_retry_interval) with no limit unless the chord is "
                       f"applied with max_retries=, so a header task that never stores its "
                       f"result (a lost message, a killed worker) leaves it polling forever "
                       f"and the body never runs nor fails; pass max_retries= to "
                       f"apply_async()")
            yield self.finding(workflow.module.path, application.span, message, replay=replay)

    @staticmethod
    def _polling_backend(project, chord: Node):
        tasks = [s.task for s in signatures(chord)]
        if not tasks or any(task is None for task in tasks):
            return None
        apps = {}
        for task in tasks:
            app = project.apps.app_of_task(task)
            if app is None:
                return None
            apps[id(app.call)] = app
        if len(apps) != 1:
            return None
        setting = project.apps.config(next(iter(apps.values()))).backend
        if setting.state != LITERAL or not isinstance(setting.value, str):
            return None
        scheme = setting.value.split("://", 1)[0].split("+", 1)[0].lower()
        if scheme not in POLLING_BACKENDS:
            return None
        return setting.value, scheme


def _leading_chord(canvas: Node) -> Optional[Node]:
    """The chord the application's options reach: the canvas itself, or the chord a chain led
    by a group becomes (``chain(group(...), task)``); None otherwise."""
    if isinstance(canvas, ChordNode) and canvas.body is not None:
        return canvas
    if isinstance(canvas, ChainNode) and len(canvas.steps) >= 2 \
            and isinstance(canvas.steps[0], GroupNode) and not canvas.steps[0].unrolled:
        return canvas  # Celery makes it chord(group, rest of the chain)
    return None


def _names_max_retries(expr: Optional[ir.Expr]) -> bool:
    """Whether the applied expression passes ``max_retries=`` (or a ``**`` splat, which may)
    anywhere: ``.set(max_retries=...)`` on a chord is not modelled, so say nothing then. A
    ``*`` splat passes positional arguments only (``group(*sigs)``)."""
    for node in ir.walk(expr) if expr is not None else ():
        if isinstance(node, ir.Call) and (any(arg.star == "**" for arg in node.args)
                                          or node.keyword("max_retries") is not None):
            return True
    return False


def _short(url: str) -> str:
    return url if len(url) <= 40 else url[:37] + "..."
