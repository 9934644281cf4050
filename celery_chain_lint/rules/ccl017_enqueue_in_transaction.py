"""CCL017 enqueue-in-transaction: a task is sent from inside an open database transaction.

## What it does
Flags ``task.delay(...)``, ``task.apply_async(...)`` and ``canvas.delay()``/``.apply_async()``
written inside ``with transaction.atomic():`` (Django's ``django.db.transaction.atomic``) or in
a function decorated with ``@transaction.atomic``, unless it is deferred with
``transaction.on_commit(...)`` (a lambda or a function passed to it is not reported) or sent
with ``delay_on_commit``. A task whose class may send it its own way (a base class defining
``apply_async`` or ``delay``, as a ``TransactionAwareTask`` that defers them to the commit; a
base the task index cannot read, as for its options; an app made with ``task_cls=``) is not
reported.

## Why is this bad?
``delay`` publishes the message at once; the transaction commits later, when the block ends.
A worker that picks the message up in between reads the database as it was before: the row the
task is about does not exist yet, or still has its old values. If the transaction rolls back,
the task runs anyway, about data that never existed. Whether it fails depends on timing, so it
passes tests and breaks under load. Observed with Celery 5.7.0, Django 5.2.19 and SQLite: a
task sent inside ``transaction.atomic()`` right after inserting order 1 failed with
``LookupError('order 1 does not exist')``; after a rollback the task still ran and failed the
same way; sent with ``transaction.on_commit(lambda: send_confirmation.delay(2))`` it read
``'placed'``.

## Example
```python
with transaction.atomic():
    order = Order.objects.create(customer=customer)
    send_confirmation.delay(order.pk)      # may run before the order is committed
```

## How to fix
Send it once the transaction has committed:
```python
with transaction.atomic():
    order = Order.objects.create(customer=customer)
    transaction.on_commit(lambda: send_confirmation.delay(order.pk))
```
or ``send_confirmation.delay_on_commit(order.pk)`` (Celery >= 5.4 with Django's task class).
``--fix`` (unsafe: a lambda reads its variables when it runs) wraps a bare statement in
``transaction.on_commit(lambda: ...)``.
"""
from __future__ import annotations

from typing import Iterator, Optional

from celery_chain_lint.facts import ir
from celery_chain_lint.index.options import task_lineage
from celery_chain_lint.index.symbols import External
from celery_chain_lint.findings import Edit, Fix
from celery_chain_lint.rules.base import Invalid, Rule
from celery_chain_lint.workflow.model import UnknownNode

ATOMIC = frozenset({"django.db.transaction.atomic"})
SEND_METHODS = frozenset({"delay", "apply_async"})

_APP = """\
from celery import Celery
from django.db import transaction
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def send_confirmation(order_id):
    return order_id

def create_order(order_id):
    return order_id
"""


class EnqueueInTransaction(Rule):
    code = "CCL017"
    name = "enqueue-in-transaction"
    summary = ("a task is sent inside transaction.atomic(): the worker may run it before the "
               "commit, or after a rollback")
    fixable = True
    fix_safety = "unsafe"

    VALID = [
        _APP + "def place(order_id):\n    with transaction.atomic():\n"
               "        create_order(order_id)\n"
               "        transaction.on_commit(lambda: send_confirmation.delay(order_id))\n",
        _APP + "def place(order_id):\n    with transaction.atomic():\n"
               "        create_order(order_id)\n    send_confirmation.delay(order_id)\n",
        # The task's class sends it once the transaction commits (as pretix's tasks do).
        _APP + "class AfterCommit(app.Task):\n    def apply_async(self, *args, **kwargs):\n"
               "        transaction.on_commit(lambda: super().apply_async(*args, **kwargs))\n\n"
               "@app.task(base=AfterCommit)\ndef notify(order_id):\n    return order_id\n\n"
               "def place(order_id):\n    with transaction.atomic():\n"
               "        create_order(order_id)\n        notify.delay(order_id)\n",
        # The app's default task class may do the same for every task, shared ones included.
        "from celery import Celery, shared_task\nfrom django.db import transaction\n"
        "app = Celery('shop', task_cls='shop.base:AfterCommit')\n\n"
        "@shared_task\ndef notify(order_id):\n    return order_id\n\n"
        "def place(order_id):\n    with transaction.atomic():\n"
        "        notify.delay(order_id)\n",
        # Or be set on the app after it is made.
        _APP + "class AfterCommit(app.Task):\n    def apply_async(self, *args, **kwargs):\n"
               "        transaction.on_commit(lambda: super().apply_async(*args, **kwargs))\n\n"
               "app.Task = AfterCommit\n\n"
               "def place(order_id):\n    with transaction.atomic():\n"
               "        send_confirmation.delay(order_id)\n",
    ]
    INVALID = [
        Invalid(_APP + "def place(order_id):\n    with transaction.atomic():\n"
                "        create_order(order_id)\n"
                "        send_confirmation.delay(order_id)  # expect: CCL017\n",
                fixed=_APP + "def place(order_id):\n    with transaction.atomic():\n"
                "        create_order(order_id)\n"
                "        transaction.on_commit(lambda: send_confirmation.delay(order_id))"
                "  # expect: CCL017\n"),
        _APP + "@transaction.atomic\ndef place(order_id):\n    create_order(order_id)\n"
               "    send_confirmation.apply_async((order_id,))  # expect: CCL017\n",
        # A base class of the project that leaves sending to Celery's Task.
        _APP + "class Logged(app.Task):\n    def on_failure(self, *args):\n        pass\n\n"
               "@app.task(base=Logged)\ndef notify(order_id):\n    return order_id\n\n"
               "def place(order_id):\n    with transaction.atomic():\n"
               "        create_order(order_id)\n"
               "        notify.delay(order_id)  # expect: CCL017\n",
        # Another app's task class replaced: not this task's.
        _APP + "other = Celery('other')\n\nclass AfterCommit(other.Task):\n"
               "    def apply_async(self, *args, **kwargs):\n"
               "        transaction.on_commit(lambda: super().apply_async(*args, **kwargs))\n\n"
               "other.Task = AfterCommit\n\n"
               "def place(order_id):\n    with transaction.atomic():\n"
               "        send_confirmation.delay(order_id)  # expect: CCL017\n",
    ]

    def check(self, project) -> Iterator:
        for facts in project.modules.values():
            if not project.reports_on(facts.path):
                continue
            module = facts.module
            statements = {id(root.expr) for root in facts.roots if root.kind == "expr"}
            for function in facts.functions.values():
                if not function.may_use_attribute(SEND_METHODS) or function.left_unread:
                    continue  # left unread: it names no task nor canvas it could send
                decorated = None  # the @transaction.atomic, False if none: resolved once
                for site in function.calls:
                    call = site.call
                    if not (isinstance(call, ir.Call) and isinstance(call.func, ir.Attribute)
                            and call.func.attr in SEND_METHODS and call.span is not None
                            and project.may_reach(module, call)):
                        continue  # (naming nothing Celery-related, it sends nothing)
                    if decorated is None:
                        decorated = next((d for d in function.decorators
                                          if self._is_atomic(project, module, d)), False)
                    block = next((item for item in site.with_items
                                  if self._is_atomic(project, module, item)), None)
                    if block is None and not decorated:
                        continue
                    sent = self._sent(project, module, call)
                    if sent is None:
                        continue
                    if block is not None:
                        where = f"inside `with {block.text}` (line {block.span.line})"
                    else:
                        where = f"in {function.name}, decorated with @{decorated.text}"
                    what = f"{sent} ({call.func.attr}())" if sent.startswith("the ") \
                        else f"{sent}.{call.func.attr}()"
                    message = (f"{what} is sent {where}: the message goes "
                               "out before the transaction commits, so the worker can run the "
                               "task before its data is visible, or after a rollback; send it "
                               "from transaction.on_commit(lambda: ...) or with "
                               "delay_on_commit()")
                    fix = self._fix(call, block) if id(call) in statements else None
                    yield self.finding(facts.path, call.span, message, fix)

    @staticmethod
    def _is_atomic(project, module: str, expr: ir.Expr) -> bool:
        target = expr.func if isinstance(expr, ir.Call) else expr
        symbol = project.resolver.resolve(target, module)
        return isinstance(symbol, External) and symbol.qualname in ATOMIC

    @staticmethod
    def _sent(project, module: str, call: ir.Call) -> Optional[str]:
        """What is sent: the task's name, "the chain"..., or None when it is not Celery's."""
        applied = project.builder.application(call, module)
        if applied is None:
            return None
        canvas = applied[0]
        if isinstance(canvas, UnknownNode):
            return None
        task = getattr(canvas, "task", None)
        if task is not None:
            return None if _sent_its_own_way(project, task) else task.display
        return {"ChainNode": "the chain", "GroupNode": "the group", "ChordNode": "the chord"}.get(
            type(canvas).__name__, "the canvas")

    @staticmethod
    def _fix(call: ir.Call, block: Optional[ir.Expr]) -> Optional[Fix]:
        if block is None or not (block.text or "").startswith("transaction."):
            return None  # the name ``transaction`` may not be bound here
        span = call.span
        start = ir.Span(span.line, span.column, span.line, span.column)
        end = ir.Span(span.end_line, span.end_column, span.end_line, span.end_column)
        return Fix("Send it from transaction.on_commit()",
                   (Edit(start, "transaction.on_commit(lambda: "), Edit(end, ")")),
                   applicability="unsafe")


def _sent_its_own_way(project, task) -> bool:
    """Whether the task's class may send it its own way, so that the rule cannot know: a
    class of the project defining ``apply_async`` or ``delay`` (pretix's ``TransactionAwareTask``
    defers both with ``transaction.on_commit``), a base class the index cannot read (from
    another package than Celery, several project bases, ``**options``), or an app created with
    ``task_cls=`` or given another task class (``app.Task = OnCommitTask``)."""
    lineage = task_lineage(project.resolver, task)
    return lineage is None or any(
        not SEND_METHODS.isdisjoint(project.resolver.modules[cls.module].classes[cls.qualname]
                                    .methods) for cls in lineage)
