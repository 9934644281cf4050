"""CCL008 chord-without-results: a chord whose header results cannot be collected.

## What it does
Flags a chord (``chord(header, body)``, ``chord(header)(body)``, ``group(...) | task.s()``, or a
chain in which a group is followed by a step, which Celery upgrades to a chord) when its app:

- has no result backend: ``Celery(...)`` without ``backend=``, and no ``result_backend`` (or
  ``CELERY_RESULT_BACKEND`` in a Django settings module read with
  ``config_from_object("django.conf:settings", namespace="CELERY")``) set in the analysed code.
  The Django settings module is the one ``DJANGO_SETTINGS_MODULE`` names; when that module is
  not in the tree (a plugin analysed without its host project), or nothing names it and the
  only ``settings`` module is not beside the app's (a plugin's own defaults), the backend is
  unknown and nothing is said;
- uses the ``rpc://`` backend;
- or when header tasks ignore their results (``ignore_result=True`` on the task or its base
  class, or the app's ``task_ignore_result = True``) and are not re-enabled with
  ``.set(ignore_result=False)``.

The app is the tasks' app (a ``shared_task``'s app is known only when the project has exactly one
Celery app). A backend read from the environment (``os.environ[...]``, ``os.getenv``), computed,
set inside a function (``def configure(): app.conf.result_backend = ...``, which may run before
the chord is applied), or set by a configuration source that cannot be read is unknown: nothing
is said about it. ``app.conf["result_backend"] = ...`` counts as ``app.conf.result_backend``.
``celery.conf.update(flask_app.config)`` (Flask's recipe, at module level or in the function
that makes the Celery app) reads the Flask config when the code writes it in literals only
(``flask_app.config.update(...)``, ``.from_mapping(...)``, ``flask_app.config["KEY"] = ...``
at module level); a config file, the environment, or the Flask app handed to a function of the
project make the backend unknown. ``conf.update`` in the function that creates the app
(``make_celery``) counts as written where the app is made.

## Why is this bad?
A chord counts and collects its header results in the result backend before it calls the body.
Observed on Celery 5.7.0:

- no backend: applying the chord raises ``NotImplementedError: Starting chords requires a result
  backend to be configured.`` (the same for ``group(...) | task.s()``);
- ``rpc://``: ``NotImplementedError: The "rpc" result backend does not support chords!``;
- header tasks with ``ignore_result=True`` (or ``task_ignore_result = True``): on the database
  (``db+sqlite://``) backend the body never ran (nothing after 8 s; ``celery.chord_unlock``
  retries forever, ``max_retries=None``); on the cache backend (``cache+memory://``), which
  counts the header in the backend instead, the last header task waited 3 s and the body's
  result became ``ChordError(TimeoutError)``: it never ran either. The same chord with
  ``.set(ignore_result=False)`` on the header signatures ran its body with ``[10, 20]`` within
  about a second. On the Redis backend the body happened to run; Celery's documentation still
  requires header tasks not to ignore results, and moving to another backend silently breaks it.

Celery also reads the ``CELERY_RESULT_BACKEND`` environment variable; if your deployment sets the
backend only there, configure it in code too (or mark the line ``# noqa: CCL008``).

## Example
```python
app = Celery("proj", broker="redis://localhost:6379/0")       # no backend

chord([fetch.s(url) for url in urls], merge.s()).delay()
```

## How to fix
Configure a result backend that supports chords (Redis, a database, memcached):
```python
app = Celery("proj", broker="redis://localhost:6379/0", backend="redis://localhost:6379/1")
```
and let header tasks store their results, if needed per signature:
``chord([fetch.s(url).set(ignore_result=False) for url in urls], merge.s())``.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Iterator, List, Tuple

from celery_chain_lint.index.apps import UNKNOWN, AppConfig
from celery_chain_lint.index.options import effective_options
from celery_chain_lint.index.tasks import MISSING, literal
from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.model import (
    ChainNode,
    ChordNode,
    GroupNode,
    Node,
    SignatureNode,
    signatures,
    task_display,
    where,
)
from celery_chain_lint.workflow.replay import ChordApp, workflow_replay

_TASKS = """
@app.task
def fetch(x):
    return x * 10

@app.task(ignore_result=True)
def fire(x):
    return x

@app.task
def merge(values):
    return sum(values)
"""
_NO_BACKEND = ('from celery import Celery, chain, chord, group\n'
               'app = Celery("example", broker="memory://")\n' + _TASKS)
_BACKEND = ('from celery import Celery, chain, chord, group\n'
            'app = Celery("example", broker="memory://", backend="cache+memory://")\n' + _TASKS)


def chords(node: Node) -> Iterator[Tuple[Node, GroupNode, Node]]:
    """(the chord's node, its header, its body) for every chord with a body in a canvas."""
    stack: List[Node] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ChordNode):
            if current.body is not None:
                yield current, current.header, current.body
                stack.append(current.body)
            stack.append(current.header)
        elif isinstance(current, ChainNode):
            steps = current.steps
            for index, step in enumerate(steps[:-1]):
                if isinstance(step, GroupNode) and not step.unrolled:
                    yield current, step, steps[index + 1]  # a chain upgrades group + step
            stack.extend(reversed(steps))
        elif isinstance(current, GroupNode):
            stack.extend(reversed(current.parts))


class ChordWithoutResults(Rule):
    code = "CCL008"
    name = "chord-without-results"
    summary = ("a chord whose app has no result backend or an rpc:// backend, or whose header "
               "tasks ignore results")

    VALID = [
        _BACKEND + 'chord([fetch.s(1), fetch.s(2)], merge.s()).delay()\n',
        _NO_BACKEND + 'group(fetch.s(1), fetch.s(2)).delay()\n',
        _BACKEND + 'chord([fire.s(1).set(ignore_result=False), fetch.s(2)], merge.s()).delay()\n',
        'import os\n' + _NO_BACKEND +
        'app.conf.result_backend = os.environ["RESULT_BACKEND"]\n'
        'chord([fetch.s(1), fetch.s(2)], merge.s()).delay()\n',
        _NO_BACKEND + 'chain(fetch.s(1), fetch.s()).delay()\n',
        _NO_BACKEND + 'app.conf.update(result_backend="redis://localhost:6379/1")\n'
                      'chord([fetch.s(1), fetch.s(2)], merge.s()).delay()\n',
        _NO_BACKEND + 'app.config_from_object("proj.celeryconfig")\n'
                      'chord([fetch.s(1), fetch.s(2)], merge.s()).delay()\n',
        _NO_BACKEND + 'def configure(url):\n    app.conf.result_backend = url\n\n'
                      'chord([fetch.s(1), fetch.s(2)], merge.s()).delay()\n',
        # Written as an item of the settings, at module level or in a function.
        _NO_BACKEND + 'app.conf["result_backend"] = "redis://localhost:6379/1"\n'
                      'chord([fetch.s(1), fetch.s(2)], merge.s()).delay()\n',
        _NO_BACKEND + 'def configure(url):\n    app.conf["result_backend"] = url\n\n'
                      'chord([fetch.s(1), fetch.s(2)], merge.s()).delay()\n',
    ]
    INVALID = [
        _NO_BACKEND + 'chord([fetch.s(1), fetch.s(2)], merge.s()).delay()  # expect: CCL008\n',
        _NO_BACKEND + 'app.conf["task_serializer"] = "json"\n'
                      'chord([fetch.s(1), fetch.s(2)], merge.s()).delay()  # expect: CCL008\n',
        _NO_BACKEND + '(group(fetch.s(1), fetch.s(2)) | merge.s()).delay()  # expect: CCL008\n',
        _BACKEND + 'app.conf.result_backend = "rpc://"\n'
                   'chord([fetch.s(1), fetch.s(2)])(merge.s())  # expect: CCL008\n',
        _BACKEND + 'chord([fire.s(1), fire.s(2)], merge.s()).delay()  # expect: CCL008\n',
        _BACKEND + 'app.conf.update(task_ignore_result=True)\n'
                   'chain(fetch.s(1), group(fetch.s(), fetch.s()), merge.s()).delay()  # expect: CCL008\n',
        'from celery import Celery, chord, shared_task\n'
        'app = Celery("example", broker="memory://")\n\n'
        '@shared_task\ndef fetch(x):\n    return x\n\n'
        '@shared_task\ndef merge(values):\n    return values\n\n'
        'chord([fetch.s(1), fetch.s(2)], merge.s()).delay()  # expect: CCL008\n',
    ]

    def check(self, project):
        for workflow in project.workflows:
            for node in [workflow.canvas] + [c.callback for c in workflow.callbacks]:
                for chord, header, body in chords(node):
                    finding = self._check_chord(project, workflow, chord, header, body)
                    if finding is not None:
                        yield finding

    def _check_chord(self, project, workflow, chord: Node, header: GroupNode, body: Node):
        if chord.span is None:
            return None
        # A header built by a loop or a comprehension still needs a backend: the body's task
        # tells the app. Which header tasks ignore results is known for a literal header, and
        # for the shapes of a comprehension's members (``chord(fire.s(p) for p in pages)``).
        header_sigs = list(signatures(header))
        tasks = [sig.task for sig in header_sigs + list(signatures(body))]
        if not tasks or any(task is None for task in tasks):
            return None
        app = self._app(project, tasks)
        if app is None:
            return None
        config = project.apps.config(app)
        kind = config.backend_kind()
        replay = replace(workflow_replay(workflow), app=ChordApp(
            app.module, app.variable, config.backend.value, kind, config.ignore_result.value))
        path = where(workflow, chord)
        app_name = self._app_name(app, project)
        if kind == "none":
            message = (f"this chord's app {app_name} has no result backend: applying it raises "
                       f"NotImplementedError('Starting chords requires a result backend to be "
                       f"configured'); configure one that supports chords (Redis, a database) "
                       f"with Celery(..., backend=...) or result_backend (unless the "
                       f"CELERY_RESULT_BACKEND environment variable always provides it)")
            return self.finding(path, chord.span, message, replay=replay)
        if kind == "rpc":
            message = (f"this chord's app {app_name} uses the rpc:// result backend, which does "
                       f"not support chords: applying it raises NotImplementedError('The \"rpc\" "
                       f"result backend does not support chords!'); use Redis or a database "
                       f"backend")
            return self.finding(path, chord.span, message, replay=replay)
        if not header.parts:
            return None
        ignoring = [sig for sig in header_sigs if self._ignores(project, sig, config)]
        if not ignoring:
            return None
        names = sorted({task_display(sig) for sig in ignoring})
        backend = config.backend.value if isinstance(config.backend.value, str) else ""
        scheme = backend.split(":", 1)[0].lower()
        if scheme in ("redis", "rediss", "sentinel"):
            outcome = ("it works on the Redis backend by accident, but Celery requires chord "
                       "header tasks to store results and other backends never run the body")
        elif kind == "unknown":
            outcome = ("on the database backend the body never runs (celery.chord_unlock "
                       "retries forever); on the cache backend it fails with "
                       "ChordError(TimeoutError) without running")
        elif scheme.split("+", 1)[0] == "cache":
            outcome = ("the body never runs: the cache backend counts the header's results, "
                       "which are never stored, and after result_chord_join_timeout (3 s) the "
                       "body fails with ChordError(TimeoutError)")
        else:
            outcome = ("the body never runs: celery.chord_unlock waits for results that are "
                       "never stored and retries forever")
        replay = replace(replay, ignoring=tuple(sig.task.name for sig in ignoring))
        message = (f"chord header task{'s' if len(names) > 1 else ''} {', '.join(names)} "
                   f"ignore{'' if len(names) > 1 else 's'} results: {outcome}; set "
                   f"ignore_result=False on the task or .set(ignore_result=False) on the "
                   f"header signature")
        return self.finding(path, chord.span, message, replay=replay)

    def _app(self, project, tasks):
        apps = {}
        for task in tasks:
            app = project.apps.app_of_task(task)
            if app is None:
                return None
            apps[id(app.call)] = app
        return next(iter(apps.values())) if len(apps) == 1 else None

    def _app_name(self, app, project) -> str:
        path = project.modules[app.module].path
        line = app.call.span.line if app.call.span else "?"
        return f"({app.variable or 'Celery(...)'}, created at {path}:{line})"

    def _ignores(self, project, sig: SignatureNode, config: AppConfig) -> bool:
        """Whether the header signature's task stores no result (False when unknown)."""
        for key, value in reversed(sig.options):
            if key == "ignore_result":
                return literal(value, MISSING) is True
        options = effective_options(project.resolver, sig.task)
        if options is None:
            return False
        if "ignore_result" in options:
            return literal(options["ignore_result"], MISSING) is True
        setting = config.ignore_result
        return setting.state != UNKNOWN and setting.value is True
