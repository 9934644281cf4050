"""CCL026 countdown-beyond-visibility-timeout: on Redis, a long countdown makes the task run again.

## What it does
Flags, for an app whose broker is Redis (``Celery(..., broker="redis://...")`` or a literal
``broker_url``), a delay longer than the broker's ``visibility_timeout``:
``task.apply_async(countdown=7200)``, ``sig.set(countdown=...)`` in a workflow,
``self.retry(countdown=...)``, and ``default_retry_delay=`` on a task that retries with it
(``autoretry_for`` without ``retry_backoff``, or ``self.retry()`` without a countdown). The
visibility timeout is ``broker_transport_options["visibility_timeout"]`` when the app sets one,
else kombu's default for Redis, 3600 s. Nothing is said when the broker is not a literal Redis
URL (another broker, the environment, a computed value), when the transport options or the
countdown cannot be read, or when the tasks' app is not known. (Celery lets the
``CELERY_BROKER_URL`` environment variable override the broker written in code; if a deployment
does, mark the line ``# noqa: CCL026``.) (Amazon SQS redelivers the same
way, but with a 1800 s default in kombu, and was not observed here: not reported.)

## Why is this bad?
A worker fetches a task with a countdown or ETA at once and keeps the message unacknowledged
until it runs. On Redis, kombu hands an unacknowledged message out again once it is older than
the visibility timeout, so another worker (or the same one) fetches a second copy, and a third
after another timeout: when the ETA comes, every copy runs. Celery's Redis documentation warns
about it. Observed on Celery 5.7.0 and kombu 5.7.0 (real Redis broker, threads worker) with
``broker_transport_options = {"visibility_timeout": 2, "unacked_restore_interval": 1,
"unacked_restore_throttle": 1}``: ``add.apply_async((1, 2), countdown=6)`` ran three times,
under one task id, at its ETA; ``countdown=1`` ran once.

## Example
```python
app = Celery("proj", broker="redis://localhost:6379/0")

send_reminder.apply_async((user_id,), countdown=24 * 60 * 60)   # runs 24 times or more
```

## How to fix
Raise the visibility timeout above the longest countdown, ETA or retry delay the app uses:
```python
app.conf.broker_transport_options = {"visibility_timeout": 2 * 24 * 60 * 60}
```
or schedule far-future work elsewhere (a periodic task that picks what is due, a database
column read by celery beat).
"""
from __future__ import annotations

from typing import Iterator, Optional, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.index.apps import LITERAL, UNKNOWN, UNKNOWN_KEYS, number
from celery_chain_lint.index.symbols import TaskSym
from celery_chain_lint.index.tasks import MISSING, literal
from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.model import SignatureNode, nodes
from celery_chain_lint.workflow.replay import LongDelay, Replay, task_replay

REDIS_DEFAULT_VISIBILITY = 3600
REDIS_SCHEMES = ("redis", "rediss")

_APP = """\
from celery import Celery, chain
app = Celery("example", broker="redis://localhost:6379/0", backend="redis://localhost:6379/1")

@app.task
def remind(user_id):
    return user_id
"""


class CountdownBeyondVisibility(Rule):
    code = "CCL026"
    name = "countdown-beyond-visibility-timeout"
    summary = ("a countdown, retry delay or ETA longer than the Redis broker's visibility "
               "timeout (3600 s unless configured): the message is handed out again and the "
               "task runs more than once")

    VALID = [
        _APP + "remind.apply_async((1,), countdown=600)\n",
        _APP + 'app.conf.broker_transport_options = {"visibility_timeout": 86400}\n'
               "remind.apply_async((1,), countdown=7200)\n",
        "from celery import Celery\n"
        'app = Celery("example", broker="amqp://guest@localhost//")\n\n'
        "@app.task\ndef remind(user_id):\n    return user_id\n\n"
        "remind.apply_async((1,), countdown=7200)\n",
        "import os\nfrom celery import Celery\n"
        'app = Celery("example", broker=os.environ["BROKER_URL"])\n\n'
        "@app.task\ndef remind(user_id):\n    return user_id\n\n"
        "remind.apply_async((1,), countdown=7200)\n",
        _APP + "import os\n"
               'app.conf.broker_transport_options = {"visibility_timeout": int(os.environ["VT"])}\n'
               "remind.apply_async((1,), countdown=7200)\n",
        _APP + "def later(delay):\n    remind.apply_async((1,), countdown=delay)\n",
        _APP + "@app.task(bind=True, default_retry_delay=7200, autoretry_for=(OSError,),\n"
               "          retry_backoff=True)\ndef sync(self):\n    return 1\n",
    ]
    INVALID = [
        _APP + "remind.apply_async((1,), countdown=2 * 60 * 60)  # expect: CCL026\n",
        _APP + 'app.conf.broker_transport_options = {"visibility_timeout": 600}\n'
               "chain(remind.s(1).set(countdown=900), remind.s()).delay()  # expect: CCL026\n",
        _APP + "@app.task(bind=True)\ndef sync(self):\n"
               "    raise self.retry(countdown=86400)  # expect: CCL026\n",
        _APP + "@app.task(bind=True, default_retry_delay=7200, autoretry_for=(OSError,))"
               "  # expect: CCL026\ndef sync(self):\n    return 1\n",
    ]

    def check(self, project) -> Iterator:
        seen = set()
        for found in list(self._applications(project)) + list(self._retries(project)):
            key = (found[0], found[1])
            if key in seen:
                continue
            seen.add(key)
            finding = self._finding(project, *found)
            if finding is not None:
                yield finding

    # ---- where a delay is given ----

    def _applications(self, project) -> Iterator[tuple]:
        """``apply_async(countdown=N)`` and ``.set(countdown=N)`` in workflows."""
        for workflow in project.workflows:
            sigs = [n for n in nodes(workflow.canvas) if isinstance(n, SignatureNode)]
            if not sigs or any(s.task is None for s in sigs):
                continue
            application = workflow.application
            if application is not None and application.how == "apply_async" \
                    and application.span is not None:
                for key, value in application.options:
                    if key == "countdown":
                        yield (workflow.module.path, application.span, "countdown",
                               number(value), sigs[0].task, [s.task for s in sigs],
                               f"countdown={value.text}", "apply_async")
            for sig in sigs:
                for key, value in sig.options:
                    if key == "countdown" and sig.span is not None:
                        yield (workflow.module.path, sig.span, "countdown", number(value),
                               sig.task, [s.task for s in sigs],
                               f".set(countdown={value.text})", "apply_async")

    def _retries(self, project) -> Iterator[tuple]:
        """``self.retry(countdown=N)`` and ``default_retry_delay=N`` on a task that uses it."""
        for task in project.all_tasks:
            function = task.function
            if function is None or not project.reports_on(task.path):
                continue
            receiver = task.self_name
            uses_default = False
            for site in function.calls:
                call = site.call
                if not _is_retry(project, task, call, receiver):
                    continue
                countdown = call.keyword("countdown")
                if countdown is None and call.keyword("eta") is None and not call.has_splat:
                    uses_default = True
                if countdown is not None:
                    yield (task.path, call.span, "countdown", number(countdown), task, [task],
                           f"{call.func.text or 'retry'}(countdown={countdown.text})", "retry")
            if "retry_backoff" in task.options and \
                    literal(task.options["retry_backoff"], MISSING) is not False:
                automatic = False  # the countdown is the backoff's, capped at 600 s
            else:
                automatic = "autoretry_for" in task.options
            delay = task.options.get("default_retry_delay")
            where = delay.span if delay is not None and delay.span is not None else task.span
            if delay is not None and (uses_default or automatic) and where is not None:
                yield (task.path, where, "default_retry_delay", number(delay), task, [task],
                       f"default_retry_delay={delay.text}", "retry")

    # ---- the broker ----

    def _finding(self, project, path, span, kind, seconds, task, tasks, written, how):
        if seconds is None:
            return None
        broker = _redis_visibility(project, tasks)
        if broker is None:
            return None
        visibility, where, url = broker
        if seconds <= visibility:
            return None
        origin = (f"broker_transport_options sets it at {where}" if where else
                  "kombu's default for Redis: broker_transport_options sets none")
        copies = max(2, int(seconds // visibility))
        message = (f"{written} ({_seconds(seconds)}) is longer than the Redis broker's "
                   f"visibility_timeout ({_seconds(visibility)}, {origin}): the worker keeps "
                   f"the message unacknowledged until it runs, Redis hands it out again every "
                   f"{_seconds(visibility)}, and {task.display} runs "
                   f"{'about ' + str(copies) + ' times' if copies < 50 else 'many times'} "
                   f"instead of once; raise broker_transport_options['visibility_timeout'] "
                   f"above the longest delay, or schedule it another way")
        replay = Replay(task=task_replay(task),
                        long_delay=LongDelay(how, kind, seconds, visibility, url),
                        tasks={t.name: task_replay(t) for t in tasks if t.name})
        return self.finding(path, span, message, replay=replay)


def _redis_visibility(project, tasks) -> Optional[Tuple[float, Optional[str], str]]:
    """(visibility timeout, where it is set, broker URL) when the tasks' one app has a literal
    Redis broker and readable transport options; None otherwise."""
    apps = {}
    for task in tasks:
        app = project.apps.app_of_task(task)
        if app is None:
            return None
        apps[id(app.call)] = app
    if len(apps) != 1:
        return None
    config = project.apps.config(next(iter(apps.values())))
    broker = config.get("broker_url")
    if broker.state != LITERAL or not isinstance(broker.value, str):
        return None
    scheme = broker.value.split("://", 1)[0].split("+", 1)[0].lower()
    if scheme not in REDIS_SCHEMES:
        return None
    options = config.get("broker_transport_options")
    if options.state == UNKNOWN:
        return None
    if options.state != LITERAL:
        return REDIS_DEFAULT_VISIBILITY, None, broker.value
    if not isinstance(options.value, dict) or "visibility_timeout" in options.value.get(
            UNKNOWN_KEYS, ()):
        return None
    value = options.value.get("visibility_timeout")
    if value is None:
        return REDIS_DEFAULT_VISIBILITY, None, broker.value
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        return None
    return float(value), options.origin, broker.value


def _is_retry(project, task, call, receiver: Optional[str]) -> bool:
    if not (isinstance(call, ir.Call) and isinstance(call.func, ir.Attribute)
            and call.func.attr == "retry" and call.span is not None):
        return False
    owner = call.func.value
    if isinstance(owner, ir.Opaque) and owner.kind == "local":
        return receiver is not None and owner.text == receiver
    return isinstance(project.resolver.resolve(owner, task.module), TaskSym)


def _seconds(value: float) -> str:
    value = int(value) if float(value).is_integer() else value
    if isinstance(value, int) and value >= 3600 and value % 3600 == 0:
        return f"{value} s = {value // 3600} h"
    return f"{value} s"

