"""What an expression refers to, once resolved across the analysed modules."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from celery_chain_lint.facts import ir


@dataclass(frozen=True)
class ModuleSym:
    name: str


@dataclass(frozen=True)
class FunctionSym:
    module: str
    qualname: str


@dataclass(frozen=True)
class ClassSym:
    module: str
    qualname: str


@dataclass(frozen=True)
class InstanceSym:
    """An instance of an analysed class, e.g. ``Charge()``."""

    cls: ClassSym


@dataclass(frozen=True)
class External:
    """A name from code that is not analysed, by its dotted origin: "celery.chain", "itertools.chain"."""

    qualname: str


@dataclass(frozen=True, eq=False)
class AppSym:
    """A ``Celery(...)`` instance created in the analysed code."""

    module: str
    call: ir.Call
    variable: Optional[str] = None
    # Set when the app's class is not Celery's as written but loaded at run time
    # (``import_string(setting)(main=...)``), known for an app by what the code calls on it: its
    # configuration may come from that class, so none of it is known.
    loaded: Optional[str] = None
    # The app's class is a subclass of Celery's that defines its own ``task``: what its
    # decorator does with options and arguments is not known.
    own_task_method: bool = False
    # The function making the app set its task class (``celery.Task = ContextTask``, Flask's
    # ``make_celery`` recipe), as ``Celery(..., task_cls=...)`` does: what that class defines
    # (how a task is sent) is not read.
    task_class_written: bool = False


@dataclass(frozen=True, eq=False)
class ExtensionSym:
    """A Flask extension keeping a Celery app on an attribute (``ext = FlaskCeleryExt(app)``,
    then ``ext.celery``): ``call`` made it, ``attribute`` holds the app."""

    module: str
    call: ir.Call
    qualname: str
    attribute: str


# Flask extensions that make a Celery app and keep it on an attribute of theirs.
CELERY_EXTENSIONS = {
    "flask_celeryext.FlaskCeleryExt": "celery",
    "flask_celeryext.ext.FlaskCeleryExt": "celery",
}


@dataclass(frozen=True, eq=False)
class DecoratorSym:
    """A task decorator ready to be applied: ``app.task(bind=True)``, ``shared_task``, a wrapper."""

    options: Dict[str, ir.Expr] = field(default_factory=dict)
    app: Optional[AppSym] = None
    # None: options are literal; else the decorator was called with ``**kwargs`` we cannot see.
    open_options: bool = False


@dataclass(frozen=True, eq=False)
class TaskSym:
    task: Any  # celery_chain_lint.index.tasks.Task


@dataclass(frozen=True, eq=False)
class ValueSym:
    """A module-level variable's value, to be interpreted in its own module."""

    module: str
    expr: ir.Expr


@dataclass(frozen=True)
class MemberSym:
    """``owner.name`` where owner is an app (``app.task``, ``app.signature``, ``app.tasks``)."""

    owner: Any
    name: str


@dataclass(frozen=True)
class Unknown:
    pass


UNKNOWN = Unknown()

# Every public spelling of the Celery objects the analyser understands -> one canonical name.
CELERY_NAMES = {
    "celery.Celery": "Celery",
    "celery.app.Celery": "Celery",
    "celery.app.base.Celery": "Celery",
    "celery.shared_task": "shared_task",
    "celery.app.shared_task": "shared_task",
    "celery.current_app.task": "app.task",
    "celery.app.current_app.task": "app.task",
    "celery._state.current_app.task": "app.task",
    "celery.Task": "Task",
    "celery.app.task.Task": "Task",
    "celery.app.Task": "Task",
    "celery.chain": "chain",
    "celery.canvas.chain": "chain",
    "celery.canvas._chain": "chain",
    "celery.group": "group",
    "celery.canvas.group": "group",
    "celery.chord": "chord",
    "celery.canvas.chord": "chord",
    "celery.canvas._chord": "chord",
    "celery.signature": "signature",
    "celery.canvas.signature": "signature",
    "celery.subtask": "signature",
    "celery.canvas.subtask": "signature",
    "celery.canvas.maybe_signature": "signature",
    "celery.Signature": "Signature",
    "celery.canvas.Signature": "Signature",
    "celery.result.AsyncResult": "AsyncResult",
    "celery.result.GroupResult": "GroupResult",
    "celery.result.ResultSet": "ResultSet",
    "celery.result.allow_join_result": "allow_join_result",
    "celery.current_app.signature": "signature",
    "celery.current_app.send_task": "send_task",
    "celery.app.current_app.send_task": "send_task",
    "celery._state.current_app.send_task": "send_task",
}


def celery_name(symbol: Any) -> Optional[str]:
    """The canonical Celery name of ``symbol``, or None when it is not one of Celery's objects."""
    if isinstance(symbol, External):
        return CELERY_NAMES.get(symbol.qualname)
    return None
