"""What makes a statement a workflow root, and, read cheaply, which function bodies may hold one.

Two views of one rule, kept side by side because the second must over-approximate the first:

- ``looks_like_canvas(expr)``: the extractor keeps a statement's expression (after local names
  are substituted) as a ``Root`` when it calls a canvas method or name, or uses ``|``;
- ``body_reading(function)``: from ``ast`` alone, whether a function body may produce such a
  root, or holds something else the rules need from every function at once. Bodies it does not
  read ``NOW`` are elided before the facts pass reads the file (``celery_chain_lint/load/bodies.py``).

Why ``body_reading`` never misses a root: substitution only moves expressions within one body,
so every canvas method or name a root calls is spelled somewhere in that body (``d = t.delay``
then ``d()``), as an attribute, a plain name, or an imported name; ``|`` is spelled as ``|`` or
``|=``. Two root methods matter only on a given receiver (``app.conf.update``,
``os.environ.setdefault``, read by ``index/apps.py``), so they also need the receiver spelled.

A body whose only reason is a root (``.s``, ``.delay``, ``.set``, ``group``, ``|``...) is read
``IF_RELEVANT``: once the project is known, when it spells a Celery-related name of its module
(``prefilter.relevance``: a task, an app, one of Celery's objects, a variable or function built
from those, a module holding them). A root reaches a canvas only through such a name: a
parameter, ``self``, a literal or a name from another library resolve to nothing the workflow
builder can build, so ``Q(a) | Q(b)`` (Django), ``match.group(1)``, ``series.map(f)`` or a test
suite's ``self.add.s(1)`` are never parsed. The same holds for the calls CCL017 reads in every
body (a task sent: the builder must find the task), but not for CCL015's, which looks for task
methods on plain functions: a body spelling one of ``TASK_METHODS`` is also read when it spells
a name that may resolve to a plain function or to a module of the project. A body left unread
is marked (``FunctionFacts.left_unread``) and those rules skip it. A body defining a class or a
decorated function waits the same way: what it defines is a task or a task class only through
a Celery-related decorator or base, which it spells. A body importing names itself is read now
(its names are not the module's).
Importing nothing heavy: the pipeline's main process uses it before the facts pass is needed.
"""
from __future__ import annotations

import ast
from typing import (AbstractSet, Dict, FrozenSet, Iterator, List, NamedTuple, Optional, Set,
                    Tuple)

from celery_chain_lint.facts import ir

# Method names that make a statement worth keeping as a root: canvas building and applying,
# and the app calls the index reads (task registration, configuration, and
# ``os.environ.setdefault("DJANGO_SETTINGS_MODULE", ...)`` for the Django settings module).
ROOT_METHODS = frozenset(
    {"s", "si", "signature", "subtask", "delay", "apply_async", "apply", "link", "link_error",
     "on_error", "set", "map", "starmap", "chunks", "replace", "add_to_chord",
     "register_task", "register", "config_from_object", "update", "setdefault",
     "send_task", "autodiscover_tasks",
     # ``app.task(fetch)``: a task made of a plain function, even as a bare statement
     # (``TaskIndex.all``).
     "task"}
)
CANVAS_NAMES = frozenset({"chain", "group", "chord", "signature", "Signature", "subtask", "chunks",
                          # ``functools.reduce(operator.or_, sigs)`` composes a chain.
                          "reduce"})
# Root methods read only on one receiver (index/apps.py): the method, and the last name of the
# receiver it needs (``app.conf.update(...)``, ``os.environ.setdefault(...)``).
RECEIVER_NEEDED = {"update": "conf", "setdefault": "environ"}
_ANY_RECEIVER = (ROOT_METHODS | CANVAS_NAMES) - frozenset(RECEIVER_NEEDED)

# The task methods CCL015 (not-a-task) looks for on any receiver, in every function body: on a
# plain function they raise AttributeError. A body spelling one, left unread because it spells no
# Celery-related name, is still read when it spells a name that may be a plain function.
TASK_METHODS = frozenset({"s", "si", "delay", "apply_async", "signature", "subtask", "map",
                          "starmap", "chunks"})

# What the facts pass does with a function body: read it with the rest of the module, leave it
# until a rule asks, or leave it and read it for its roots if it spells a Celery-related name.
NOW, LATER, IF_RELEVANT = 1, 0, 2

# A function decorated with a name holding this word may be a task (``@app.task``,
# ``@shared_task``, ``@periodic_task``): its body is read at once, since most rules read a task's
# body and reading it later costs a second parse. Only time depends on this guess: a task under
# another decorator (a project's own ``@job``) has its body read when a rule asks for it.
TASK_WORD = "task"


def looks_like_canvas(expr: ir.Expr) -> bool:
    for node in ir.walk(expr):
        if isinstance(node, ir.BinOp):
            return True
        if isinstance(node, ir.Call):
            func = node.func
            if isinstance(func, ir.Attribute) and (
                    func.attr in CANVAS_NAMES
                    or func.attr in ROOT_METHODS and _receiver_matches(func)):
                return True
            if isinstance(func, ir.Name) and func.id in CANVAS_NAMES:
                return True
            if isinstance(func, ir.Imported) and (func.name or "") in CANVAS_NAMES:
                return True
    return False


def _receiver_matches(func: ir.Attribute) -> bool:
    needed = RECEIVER_NEEDED.get(func.attr)
    if needed is None:
        return True
    if isinstance(func.value, ir.Attribute) and func.value.attr == needed:
        return True
    return (ir.dotted_name(func.value) or "").split(".")[-1] == needed


class Body(NamedTuple):
    """What a function body spells and holds, from one walk of its ``ast``."""

    names: FrozenSet[str]  # plain and imported names
    attributes: FrozenSet[str]  # attribute names (``x.delay``: ``delay``)
    pipes: bool  # a ``|`` or ``|=``
    defines: bool  # a nested class, or a function decorated other than by ``wraps``
    imports: bool  # an import statement
    rebound: FrozenSet[str]  # names it assigns, deletes or imports
    conf_owners: Tuple[ast.expr, ...]  # ``x`` of each ``x.conf.name = ...``, ``x.conf[...] =``
    # The receivers of ``TASK_METHODS`` written as dotted names (``tasks.add`` of
    # ``tasks.add.delay()``: ("tasks", "add")), through the local names assigned one
    # (``c = helper`` then ``c.delay()``: ("helper",)): CCL015's only candidates, since a call,
    # a subscript or an operation never resolves to a function. None when one starts with a
    # name the body binds otherwise (a loop variable, ``with ... as``), which may stand for
    # anything.
    receivers: Optional[FrozenSet[Tuple[str, ...]]]
    returns_value: bool  # a ``return`` with a value (its own or a nested function's)


def walk(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes of ``node``, itself included, in no particular order, as ``ast.walk`` but
    about twice as fast (no generator per field), and without expression contexts (``Load``,
    ``Store``: read them as ``node.ctx``)."""
    stack = [node]
    while stack:
        node = stack.pop()
        yield node
        kind = type(node)
        fields = _FIELDS.get(kind)
        if fields is None:
            fields = _FIELDS[kind] = tuple(f for f in kind._fields if f != "ctx")
        for name in fields:
            value = getattr(node, name, None)
            if type(value) is list:
                stack.extend(item for item in value if isinstance(item, ast.AST))
            elif isinstance(value, ast.AST):
                stack.append(value)


_FIELDS: Dict[type, Tuple[str, ...]] = {}


def read_body(function: ast.AST) -> Body:
    names: Set[str] = set()
    attributes: Set[str] = set()
    rebound: Set[str] = set()
    conf_owners: List[ast.expr] = []
    receivers: Set[Tuple[str, ...]] = set()
    assigned: Dict[str, List[Optional[Tuple[str, ...]]]] = {}  # name -> dotted values
    assignments: Set[int] = set()  # the targets above
    otherwise: Set[str] = set()  # names bound in another way (a loop, ``with``, an import)
    pipes = defines = imports = returns_value = False
    for statement in function.body:
        for node in walk(statement):  # an assignment before its targets
            kind = type(node)
            if kind is ast.Assign or kind is ast.AnnAssign or kind is ast.NamedExpr:
                targets = node.targets if kind is ast.Assign else [node.target]
                for target in targets:
                    if type(target) is ast.Name and node.value is not None:
                        assigned.setdefault(target.id, []).append(dotted_parts(node.value))
                        assignments.add(id(target))
            if kind is ast.Name:
                names.add(node.id)
                if type(node.ctx) is not ast.Load:
                    rebound.add(node.id)
                    if id(node) not in assignments:
                        otherwise.add(node.id)
            elif kind is ast.Attribute or kind is ast.Subscript:
                if kind is ast.Attribute:
                    attributes.add(node.attr)
                    if node.attr in TASK_METHODS:
                        dotted = dotted_parts(node.value)
                        if dotted is not None:
                            receivers.add(dotted)
                if type(node.ctx) is ast.Store and type(node.value) is ast.Attribute \
                        and node.value.attr == "conf":
                    conf_owners.append(node.value.value)
            elif kind is ast.alias:
                names.add(node.name)
                rebound.add(node.name)
                otherwise.add(node.name)
                if node.asname:
                    names.add(node.asname)
                    rebound.add(node.asname)
                    otherwise.add(node.asname)
            elif kind is ast.BinOp or kind is ast.AugAssign:
                pipes = pipes or type(node.op) is ast.BitOr
            elif kind is ast.Return:
                returns_value = returns_value or node.value is not None
            elif kind is ast.ClassDef:
                defines = True
            elif kind is ast.FunctionDef or kind is ast.AsyncFunctionDef:
                defines = defines or any(_decorator_name(d) != "wraps"
                                         for d in node.decorator_list)
            elif kind is ast.Import or kind is ast.ImportFrom:
                imports = True
    return Body(frozenset(names), frozenset(attributes), pipes, defines, imports,
                frozenset(rebound), tuple(conf_owners),
                _through_locals(receivers, rebound, assigned, otherwise), returns_value)


_MAX_DOTTED = 16


def _through_locals(receivers: Set[Tuple[str, ...]], rebound: Set[str],
                    assigned: Dict[str, List[Optional[Tuple[str, ...]]]], otherwise: Set[str]
                    ) -> Optional[FrozenSet[Tuple[str, ...]]]:
    """``receivers`` with each local name at their start replaced by the dotted values the
    body assigns it (none for another value: never a function); None when one is bound in
    another way too (``otherwise``)."""
    if all(dotted[0] not in rebound for dotted in receivers):
        return frozenset(receivers)
    found: Set[Tuple[str, ...]] = set()
    stack, seen = list(receivers), set()
    while stack:
        dotted = stack.pop()
        if dotted in seen:
            continue
        seen.add(dotted)
        if dotted[0] not in rebound:
            found.add(dotted)
        elif dotted[0] in otherwise or len(dotted) > _MAX_DOTTED or len(seen) > _MAX_DOTTED ** 2:
            return None  # or ``c = c.parent`` grows it forever
        else:
            stack.extend(value + dotted[1:] for value in assigned.get(dotted[0], ())
                         if value is not None)
    return frozenset(found)


def dotted_parts(node: ast.expr) -> Optional[Tuple[str, ...]]:
    """``a.b.c`` as ("a", "b", "c"); None for anything else."""
    parts: List[str] = []
    while type(node) is ast.Attribute:
        parts.append(node.attr)
        node = node.value
    if type(node) is not ast.Name:
        return None
    parts.append(node.id)
    return tuple(reversed(parts))


def body_reading(function: ast.AST, body: Optional[Body] = None) -> int:
    """When the facts pass reads ``function``'s body (``body``: ``read_body(function)``):
    ``NOW`` when it may hold a write to an app's settings (``x.conf.name = ...``,
    ``app.conf.update(...)``, ``os.environ.setdefault``), or the function may be a task;
    ``IF_RELEVANT`` when it may hold a root (a canvas name, a root method such as ``.s``,
    ``.delay``, ``.set``, or a ``|``) or defines a class or a decorated function (a task
    defined in a factory: read, the body lists it), and nothing above; else ``LATER``."""
    if any(TASK_WORD in (_decorator_name(d) or "").lower() for d in function.decorator_list):
        return NOW
    body = body or read_body(function)
    names, attributes = body.names, body.attributes
    if any(method in attributes and (receiver in attributes or receiver in names)
           for method, receiver in RECEIVER_NEEDED.items()):
        return NOW  # read by the app index (index/apps.py), whatever its receiver resolves to
    if any(not _on_a_parameter(owner, function, body.rebound) for owner in body.conf_owners):
        return NOW  # ``app.conf.result_backend = ...``, ``app.conf["..."] = ...``
    if "task" in attributes and _defines_task_on_parameter(function):
        # ``def register(app): @app.task def add(...)`` or ``return app.task(add)``: tasks
        # made on the app it is given (index/factories.py).
        return NOW
    if attributes.isdisjoint(_ANY_RECEIVER) and names.isdisjoint(CANVAS_NAMES) \
            and not body.pipes and not body.defines:  # ``.s``, ``group``, ``|``, a class...
        return LATER
    return NOW if body.imports else IF_RELEVANT


def builds_canvases(body: Body) -> bool:
    """Whether ``body`` spells a task method or a canvas name (not only ``.set``, ``|``...), or
    defines a class or a decorated function (a task, in a factory)."""
    return body.defines or not body.attributes.isdisjoint(_CANVAS_ATTRIBUTES) \
        or not body.names.isdisjoint(CANVAS_NAMES)


_CANVAS_ATTRIBUTES = TASK_METHODS | CANVAS_NAMES


def likely_names(tree: ast.Module, module: str, is_package: bool,
                 celery_modules: FrozenSet[str]) -> FrozenSet[str]:
    """The module-level names of ``tree`` that likely make a body building canvases relevant,
    a guess that only decides when a body is read: those imported from ``celery_modules``
    (Celery's own when it is not the project itself, the project's modules near it) or any of
    their submodules, and the functions decorated as tasks."""
    from celery_chain_lint.facts.model import resolve_relative

    if not celery_modules:
        return frozenset()

    def likely(name: Optional[str]) -> bool:
        return within(name or "", celery_modules)

    names: Set[str] = set()
    statements = list(tree.body)
    while statements:
        node = statements.pop()
        kind = type(node)
        if kind is ast.Import:
            names.update((a.asname or a.name.split(".")[0]) for a in node.names if likely(a.name))
        elif kind is ast.ImportFrom:
            source = resolve_relative(module, is_package, node.level, node.module or "")
            names.update((a.asname or a.name) for a in node.names
                         if likely(source) or likely(f"{source}.{a.name}"))
        elif kind is ast.FunctionDef or kind is ast.AsyncFunctionDef:
            if any(TASK_WORD in (_decorator_name(d) or "").lower() for d in node.decorator_list):
                names.add(node.name)
        elif kind is not ast.ClassDef:  # ``if``, ``try``, ``with`` at module level
            for field in ("body", "orelse", "finalbody", "handlers"):
                statements.extend(getattr(node, field, ()))
    return frozenset(names)


def within(module: str, modules: AbstractSet[str]) -> bool:
    """Whether ``module`` is one of ``modules`` or inside one of them."""
    parts = module.split(".")
    return any(".".join(parts[:end]) in modules for end in range(1, len(parts) + 1))


def _on_a_parameter(owner: ast.expr, function: ast.AST, rebound: FrozenSet[str]) -> bool:
    """Whether ``owner`` (of ``owner.conf.name = ...``) is reached from a parameter the body
    never rebinds (``self.app``): the extractor sees an opaque local there, never an app, and
    records nothing (``extract._writes_conf``). Test suites write ``self.app.conf`` a lot."""
    while isinstance(owner, (ast.Attribute, ast.Subscript, ast.Call)):
        owner = owner.func if isinstance(owner, ast.Call) else owner.value
    if not isinstance(owner, ast.Name):
        return False
    arguments = function.args
    parameters = {a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs}
    parameters |= {a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None}
    return owner.id in parameters and owner.id not in rebound


def _defines_task_on_parameter(function: ast.AST) -> bool:
    """Whether ``function`` defines a function decorated with ``P.task`` (or ``P.task(...)``),
    or calls ``P.task(...)``, ``P`` one of its parameters: the tasks of a factory given the
    app (index/factories.py), which no Celery-related name of the module makes relevant."""
    arguments = function.args
    params = {a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs}

    def on_parameter(expr: ast.expr) -> bool:
        func = expr.func if isinstance(expr, ast.Call) else expr
        return isinstance(func, ast.Attribute) and func.attr == "task" \
            and isinstance(func.value, ast.Name) and func.value.id in params

    for node in walk(function):
        if isinstance(node, ast.Call) and on_parameter(node.func if isinstance(node.func,
                                                                              ast.Call)
                                                       else node):
            return True
        if node is not function and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                and any(on_parameter(d) for d in node.decorator_list):
            return True
    return False


def _decorator_name(node: ast.expr) -> Optional[str]:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None
