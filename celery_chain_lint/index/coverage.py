"""What the analyser saw of a project, so that a clean result never silently means "saw nothing".

``coverage(project)`` counts, over the files the project reports on: the Celery apps found,
the functions decorated like tasks (``@<anything>.task``, ``@shared_task``, a project's
``@<name>_task`` around Celery's, and every task the index holds whatever its decorator is
called) against the tasks the index holds, and the canvas sites (``x.s()``, ``x.si()``, ``x.delay()``...): modelled when
the receiver is a known task, else left unknown with the reason. ``warnings(coverage)`` says
when the numbers mean the run was blind, with the likely cause and the setting that fixes it.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.roots import TASK_METHODS
from celery_chain_lint.index.resolver import is_celery
from celery_chain_lint.index.symbols import (UNKNOWN, ClassSym, External, FunctionSym, TaskSym,
                                              ValueSym)

if TYPE_CHECKING:
    from celery_chain_lint.index.project import Project

UNRESOLVED, DYNAMIC, SPLAT = "unresolved name", "dynamic construction", "splat"
# Below this many sites, a share of unknown ones says nothing.
MIN_SITES_FOR_WARNING = 5


@dataclass
class Coverage:
    files: int = 0
    apps: int = 0
    task_like: int = 0  # functions decorated like tasks
    tasks: int = 0  # of which the index holds
    sites: int = 0
    modelled: int = 0
    unknown: Dict[str, int] = field(default_factory=dict)  # reason -> count
    # Modules imported for a task decorator or a task that no analysed module is, though a
    # module of the tree ends with that name: the likely cause of a blind run.
    missing_modules: Dict[str, List[str]] = field(default_factory=dict)
    # The decorators of the functions decorated like tasks that are not indexed, as spelled
    # (``@self.app.task``), with how many functions each: what the analyser could not follow.
    unrecognised: Dict[str, int] = field(default_factory=dict)
    root: Optional[str] = None  # the project's import root, when the tree holds several

    def to_json(self) -> dict:
        return {"root": self.root, "files": self.files, "apps": self.apps,
                "task_like_functions": self.task_like, "tasks_indexed": self.tasks,
                "canvas_sites": self.sites, "canvas_sites_modelled": self.modelled,
                "canvas_sites_unknown": dict(sorted(self.unknown.items())),
                "missing_modules": dict(sorted(self.missing_modules.items())),
                "unrecognised_decorators": dict(sorted(self.unrecognised.items()))}

    def add(self, other: "Coverage") -> "Coverage":
        unknown = Counter(self.unknown)
        unknown.update(other.unknown)
        missing = {**self.missing_modules, **other.missing_modules}
        unrecognised = Counter(self.unrecognised)
        unrecognised.update(other.unrecognised)
        return Coverage(self.files + other.files, self.apps + other.apps,
                        self.task_like + other.task_like, self.tasks + other.tasks,
                        self.sites + other.sites, self.modelled + other.modelled,
                        dict(unknown), missing, dict(unrecognised))


def coverage(project: "Project") -> Coverage:
    found = Coverage()
    reported = [facts for facts in project.modules.values() if project.reports_on(facts.path)]
    found.files = len(reported)
    paths = {facts.path for facts in reported}
    found.apps = sum(1 for app in project.apps.apps() if project.modules[app.module].path in paths)
    indexed = {(task.module, task.qualname) for task in project.all_tasks if task.path in paths}
    missing: Dict[str, set] = {}
    for facts in reported:
        for qualname, function in facts.functions.items():
            if not function.decorators:
                continue
            # A task is counted whatever its decorator is called (``nautobot_task =
            # shared_task``); a function that is not one, when its decorator is spelled as a
            # task decorator: Celery's, or a project's ``*_task`` wrapping one (treeherder's
            # ``@retryable_task(...)``) unless it wraps a task (osf.io's ``@queued_task`` over
            # ``@app.task`` makes a plain function).
            # A task kept as a static or class method (pretix's ``@staticmethod`` over
            # ``@app.task``) is one Celery registers, and the index does not follow.
            decorators = function.decorators
            if function.is_method and len(decorators) > 1 \
                    and _spelling(decorators[0]) in ("staticmethod", "classmethod"):
                decorators = decorators[1:]
            if (facts.module, qualname) in indexed:
                found.task_like += 1
                found.tasks += 1
            elif _looks_like_task(project, facts.module, decorators[0],
                                  wrapper=not any(_spelled_as_task(d, wrapper=False)
                                                  for d in decorators[1:])):
                found.task_like += 1
                _note_missing(project, facts.module, decorators[0], missing)
                spelled = "@" + _spelling(decorators[0])
                found.unrecognised[spelled] = found.unrecognised.get(spelled, 0) + 1
        for root in facts.roots:
            for node in ir.walk(root.expr):
                if isinstance(node, ir.Call) and isinstance(node.func, ir.Attribute) \
                        and node.func.attr in TASK_METHODS:
                    _count_site(project, facts.module, node, found, missing)
    found.tasks += sum(1 for task in project.all_tasks
                       if task.path in paths and task.class_facts is not None)
    found.task_like += sum(1 for task in project.all_tasks
                           if task.path in paths and task.class_facts is not None)
    found.missing_modules = {name: sorted(where) for name, where in missing.items()}
    return found


def _spelling(expr: ir.Expr) -> str:
    """``self.app.task`` for the decorator ``@self.app.task(bind=True)``."""
    if isinstance(expr, ir.Call):
        return _spelling(expr.func)
    if isinstance(expr, ir.Attribute):
        return f"{_spelling(expr.value)}.{expr.attr}"
    if isinstance(expr, ir.Name):
        return expr.id
    if isinstance(expr, ir.Imported):
        return expr.name or expr.module
    return getattr(expr, "text", "") or "..."


def _spelled_as_task(decorator: ir.Expr, wrapper: bool) -> bool:
    """``@app.task``, ``@shared_task``, ``@task``; with ``wrapper``, also a name ending in
    ``_task`` (``@retryable_task(...)``, ``@celery.nautobot_task``)."""
    if isinstance(decorator, ir.Call):
        decorator = decorator.func
    if isinstance(decorator, ir.Attribute):
        name, exact = decorator.attr, ("task",)
    elif isinstance(decorator, ir.Name):
        name, exact = decorator.id, ("shared_task", "task")
    elif isinstance(decorator, ir.Imported):
        name, exact = decorator.name or "", ("shared_task", "task")
    else:
        return False
    return name in exact or (wrapper and name.endswith("_task"))


def _looks_like_task(project: "Project", module: str, decorator: ir.Expr,
                     wrapper: bool = True) -> bool:
    """Spelled as Celery's task decorators are (or, with ``wrapper``, as a project's wrapping
    one), and not another library's (``invoke.task``, huey's ``db_task``)."""
    if not _spelled_as_task(decorator, wrapper):
        return False
    if isinstance(decorator, ir.Call):
        decorator = decorator.func
    symbol = project.resolver.resolve(decorator, module)
    if symbol is UNKNOWN and isinstance(decorator, ir.Attribute):
        return not _another_librarys_object(project, decorator.value, module)
    if isinstance(symbol, FunctionSym) and _wraps_another_task_runner(project, symbol):
        return False
    if isinstance(symbol, (FunctionSym, ClassSym)) and not _spelled_as_task(decorator, False):
        # ``@retryable_task``: a project's wrapper of Celery's decorator only where its module
        # imports Celery (not a helper that happens to end in ``_task``).
        return _imports_celery(project, symbol.module)
    if not isinstance(symbol, External) or is_celery(symbol.qualname):
        return True
    # Under a module of the tree (a name it was expected to hold, not found there), or under
    # one the tree holds by another name (``main.celery`` for ``repo.main.celery``).
    return symbol.qualname.split(".")[0] in project.modules \
        or _in_tree(project, symbol.qualname) is not None


def _another_librarys_object(project: "Project", owner: ir.Expr, module: str) -> bool:
    """Whether ``owner`` (of ``@owner.task``) is made by calling another library's class or
    function (``huey = RedisHuey("shop")``), which no Celery app is. Not a library naming
    Celery (``flask_celery.Celery``): that may be an app the analyser cannot follow."""
    found = project.resolver.resolve(owner, module)
    if not (isinstance(found, ValueSym) and isinstance(found.expr, ir.Call)):
        return False
    made_by = project.resolver.resolve(found.expr.func, found.module)
    return isinstance(made_by, External) and "celery" not in made_by.qualname.lower() \
        and made_by.qualname.split(".")[0] not in project.modules


# Libraries whose ``task`` decorator makes command-line tasks, or another queue's tasks, not
# Celery's.
OTHER_TASK_RUNNERS = ("invoke", "fabric", "fabric2", "huey", "dramatiq", "rq", "django_rq",
                      "arq", "taskiq", "procrastinate")


def _imports_celery(project: "Project", module: str) -> bool:
    facts = project.modules.get(module)
    return facts is not None and any(
        isinstance(getattr(binding, "module", None), str) and is_celery(binding.module)
        for binding in facts.bindings.values())


def _wraps_another_task_runner(project: "Project", function: FunctionSym) -> bool:
    """A project's own ``task`` decorator around invoke's (osf.io's ``tasks/__init__.py``):
    its module imports such a library and nothing from Celery, and its body uses the library."""
    facts = project.modules.get(function.module)
    defined = facts.functions.get(function.qualname) if facts is not None else None
    if defined is None:
        return False
    runners, celery = set(), False
    for name, binding in facts.bindings.items():
        source = getattr(binding, "module", None)
        if not isinstance(source, str):
            continue
        top = source.split(".")[0]
        celery = celery or top == "celery" or "celery" in source.split(".")
        if top in OTHER_TASK_RUNNERS:
            runners.add(name)
    return bool(runners) and not celery and defined.may_mention(runners)


def _count_site(project: "Project", module: str, call: ir.Call, found: Coverage,
                missing: Dict[str, set]) -> None:
    receiver = call.func.value
    symbol = project.resolver.resolve(receiver, module)
    if isinstance(symbol, External) and not is_celery(symbol.qualname) \
            and _in_tree(project, symbol.qualname) is None:
        return  # ``re.match(...).group``, ``requests.delay``: not a canvas at all
    if _made_by_another_library(project, receiver, module):
        return
    found.sites += 1
    if any(arg.star for arg in call.args):
        reason = SPLAT
    elif isinstance(symbol, TaskSym):
        found.modelled += 1
        return
    elif isinstance(receiver, (ir.Name, ir.Attribute, ir.Imported)):
        reason = UNRESOLVED
        _note_missing(project, module, receiver, missing)
    else:
        reason = DYNAMIC
    found.unknown[reason] = found.unknown.get(reason, 0) + 1


def _made_by_another_library(project: "Project", receiver: ir.Expr, module: str) -> bool:
    """``pool.map(f, items)`` where ``with ThreadPoolExecutor() as pool`` (or ``pool =
    Pool()``): the receiver is what another library's call made (bookwyrm's tests), not a
    canvas. Not a library naming Celery, a call of the project's own (``make_chain()``), nor
    ``super()`` (indico's Task subclass calls ``super().apply_async(...)``: Celery's)."""
    while isinstance(receiver, ir.Call):
        func = receiver.func
        if isinstance(func, ir.Attribute) and func.attr == "__enter__":
            receiver = func.value  # ``with X(...) as pool``
            continue
        made_by = project.resolver.resolve(func, module)
        return isinstance(made_by, External) and "celery" not in made_by.qualname.lower() \
            and made_by.qualname != "builtins.super" \
            and _in_tree(project, made_by.qualname) is None
    return False


def _note_missing(project: "Project", module: str, expr: ir.Expr,
                  missing: Dict[str, set]) -> None:
    """Remember an imported module that no analysed module is, but that a module of the tree
    ends with (``main.celery`` where the tree holds ``repo.main.celery``)."""
    if isinstance(expr, ir.Call):
        expr = expr.func
    while isinstance(expr, ir.Attribute):
        expr = expr.value
    symbol = project.resolver.resolve(expr, module)
    if not isinstance(symbol, External) or symbol is UNKNOWN or is_celery(symbol.qualname):
        return
    found = _in_tree(project, symbol.qualname)
    if found is not None:
        missing.setdefault(found[0], set()).update(found[1])


def _in_tree(project: "Project", qualname: str):
    """``(module, paths)``: the longest module ``qualname`` starts with that a module of the
    tree ends with, under another name (``main.celery`` for ``repo.main.celery``)."""
    parts = qualname.split(".")
    for length in range(len(parts), 0, -1):
        found = _project_module_suffix(project, ".".join(parts[:length]))
        if found:
            return ".".join(parts[:length]), found
    return None


def _project_module_suffix(project: "Project", dotted: str) -> List[str]:
    """The analysed modules whose dotted name ends with ``.dotted`` (by their paths)."""
    suffix = "." + dotted
    return [facts.path for name, facts in project.modules.items() if name.endswith(suffix)]


def warnings(total: Coverage) -> List[str]:
    """What to tell the user on stderr: the run saw Celery code it could not follow."""
    said = []
    if total.task_like and not total.tasks:
        said.append(f"{total.task_like} function(s) are decorated like Celery tasks but none "
                    f"was recognised as a task: the checks of chains, groups and chords saw "
                    f"no task.{_cause(total)}")
    elif total.task_like >= MIN_SITES_FOR_WARNING and total.tasks * 2 < total.task_like:
        said.append(f"only {total.tasks} of {total.task_like} functions decorated like Celery "
                    f"tasks were recognised as tasks.{_cause(total)}")
    unresolved = total.unknown.get(UNRESOLVED, 0)
    if total.sites >= MIN_SITES_FOR_WARNING and unresolved * 2 > total.sites:
        said.append(f"{unresolved} of {total.sites} canvas sites (.s(), .si(), .delay()...) "
                    f"call something the analyser could not resolve to a task.{_cause(total)}")
    return said


def _cause(total: Coverage) -> str:
    if total.unrecognised and not total.missing_modules:
        spelled = sorted(total.unrecognised.items(), key=lambda item: (-item[1], item[0]))[:3]
        shown = ", ".join(f"`{name}` ({count})" for name, count in spelled)
        said = (f" Their decorators do not resolve to a Celery app the analyser can follow: "
                f"{shown}.")
        if any(name.rsplit(".", 1)[-1] in ("task", "shared_task") for name, _ in spelled):
            said += (" An app made at run time (an extension, a test fixture, a parameter) "
                     "cannot be followed; where it is a module-level app imported under "
                     "another name, set `src = [...]` in [tool.celery-chain-lint] to the "
                     "directories your imports start from.")
        if any(name.rsplit(".", 1)[-1] not in ("task", "shared_task") for name, _ in spelled):
            said += (" A project's own decorator is followed when it is a function returning "
                     "Celery's (`return shared_task(**options)`, `return app.task(fn)`); a "
                     "class, or a wrapper around the function, is not.")
        return said + " `--show-coverage` shows what was seen."
    if not total.missing_modules:
        return (" Are the modules named as the code imports them? Set `src = [...]` in "
                "[tool.celery-chain-lint] to the directories your imports start from; "
                "`--show-coverage` shows what was seen.")
    name, paths = sorted(total.missing_modules.items())[0]
    return (f" Likely cause: the code imports `{name}`, which is {paths[0]} in this tree, but "
            f"it was not found under that name: set `src = [...]` in [tool.celery-chain-lint] "
            f"to the directory that `{name.split('.')[0]}` is in.")
