"""Resolves names and expressions across the analysed modules, the way Python would.

``Resolver.resolve(expr, module)`` answers "what does this expression refer to": an analysed
module, function, class or task, a Celery app, a value kept in a module-level variable, or an
``External`` name from code that is not analysed (``celery.chain``, ``itertools.chain``). Anything
it cannot follow is ``UNKNOWN``, and rules say nothing about it.
"""
from __future__ import annotations

import builtins
import dataclasses
import functools
from typing import TYPE_CHECKING, Dict, Optional, Set, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.model import (
    DefBinding,
    FromImportBinding,
    FunctionFacts,
    ImportBinding,
    ModuleFacts,
    UnknownBinding,
    ValueBinding,
)
from celery_chain_lint.index import factories, flask_apps
from celery_chain_lint.index.symbols import (
    UNKNOWN,
    AppSym,
    ClassSym,
    CELERY_EXTENSIONS,
    DecoratorSym,
    ExtensionSym,
    External,
    FunctionSym,
    InstanceSym,
    MemberSym,
    ModuleSym,
    TaskSym,
    ValueSym,
    celery_name,
)

if TYPE_CHECKING:
    from celery_chain_lint.index.tasks import TaskIndex

_BUILTINS = frozenset(dir(builtins))
# Nested resolutions (an alias of an alias of..., a decorator wrapping a decorator wrapping...,
# a class deriving from a class deriving from...) deeper than this give up: unknown.
MAX_RESOLUTION_DEPTH = 60
# The methods through which a call gives a task (``app.register_task(Charge())``,
# ``app.tasks.register(...)``: ``Resolver.call``); no other call resolves to one.
REGISTERING_METHODS = frozenset({"register_task", "register"})
# Methods only a Celery app has: an object they are called on is one (``Resolver.
# app_by_its_calls``).
APP_ONLY_METHODS = frozenset({"config_from_object", "autodiscover_tasks"})


def is_celery(module: str) -> bool:
    """``celery`` and its submodules: always the installed Celery, never a module of the
    project. A stray ``celery.py`` outside any package is not what ``import celery`` finds in
    the code beside it, and when the project is Celery itself its package is what its
    examples and tests import (index/symbols.py knows Celery's objects by name)."""
    return module == "celery" or module.startswith("celery.")


def guarded(default, memoise: bool = False):
    """A resolution step that gives ``default`` beyond MAX_RESOLUTION_DEPTH nested steps or when
    it calls itself again with the same arguments (a cycle), so that no input exhausts the stack
    (the state is kept on the resolver, which the task index shares). ``memoise`` keeps each
    result: a step that calls several others, each calling several others, is not exponential."""
    def wrap(method):
        name = method.__name__

        @functools.wraps(method)
        def step(self, *args, **kwargs):
            resolver = self if isinstance(self, Resolver) else self.resolver
            if resolver.depth >= MAX_RESOLUTION_DEPTH:
                return default
            key = (name, args)
            try:
                if key in resolver.active:  # a cycle: ``def f(): return f()``
                    return default
            except TypeError:  # unhashable arguments: no cycle check
                key = None
            if key is not None:
                if memoise and key in resolver.memo:
                    return resolver.memo[key]
                resolver.active.add(key)
            resolver.depth += 1
            try:
                result = method(self, *args, **kwargs)
                if memoise and key is not None:
                    resolver.memo[key] = result
                return result
            finally:
                resolver.depth -= 1
                if key is not None:
                    resolver.active.discard(key)
        return step
    return wrap


class Resolver:
    def __init__(self, modules: Dict[str, ModuleFacts]):
        self.modules = modules
        self.tasks: Optional["TaskIndex"] = None  # set by the project once the index exists
        self._names: Dict[Tuple[str, str], object] = {}
        self._in_progress: Set[Tuple[str, str]] = set()
        self._apps: Dict[int, AppSym] = {}
        self.depth = 0  # nested resolution steps (``guarded``)
        self.active: Set[tuple] = set()  # the steps in progress (``guarded``)
        self.memo: Dict[tuple, object] = {}  # results of memoised steps (``guarded``)

    # ---- names ----

    @guarded(UNKNOWN)
    def lookup(self, module: str, name: str) -> object:
        """What ``name`` means at the top level of ``module``."""
        key = (module, name)
        if key in self._names:
            return self._names[key]
        if key in self._in_progress:  # an import cycle or ``a = b; b = a``
            return UNKNOWN
        self._in_progress.add(key)
        try:
            result = self._lookup(module, name)
        finally:
            self._in_progress.discard(key)
        self._names[key] = result
        return result

    def _lookup(self, module: str, name: str) -> object:
        facts = self.modules.get(module)
        if facts is None:
            return External(f"{module}.{name}")
        binding = facts.bindings.get(name)
        if binding is None:
            for source in facts.star_imports:
                if source not in self.modules or is_celery(source):
                    continue  # a star import from outside could bind anything; not guessed
                if name in self.modules[source].bindings and not name.startswith("_"):
                    return self.lookup(source, name)
            if name in _BUILTINS:
                return External(f"builtins.{name}")
            return UNKNOWN
        return self.binding(module, name, binding)

    def binding(self, module: str, name: str, binding) -> object:
        if isinstance(binding, ImportBinding):
            return self.module_symbol(binding.module)
        if isinstance(binding, FromImportBinding):
            return self.from_import(binding.module, binding.name)
        if isinstance(binding, DefBinding):
            if binding.kind == "class":
                return ClassSym(module, binding.qualname)
            task = self.tasks.for_function(module, binding.qualname) if self.tasks else None
            return TaskSym(task) if task is not None else FunctionSym(module, binding.qualname)
        if isinstance(binding, ValueBinding):
            value = self.resolve(binding.expr, module)
            if value is UNKNOWN:
                value = self.app_by_its_calls(module, name, binding.expr) \
                    or flask_apps.stored_app(self, module, binding.expr)
                if value is None:
                    return ValueSym(module, binding.expr)
            if isinstance(value, AppSym) and value.variable is None:
                return dataclasses.replace(value, variable=name)
            return value
        if isinstance(binding, UnknownBinding):
            return UNKNOWN
        return UNKNOWN

    def module_symbol(self, module: str) -> object:
        return ModuleSym(module) if module in self.modules and not is_celery(module) \
            else External(module)

    def from_import(self, module: str, name: str) -> object:
        submodule = f"{module}.{name}"
        if is_celery(module):
            return External(submodule)
        if submodule in self.modules:
            facts = self.modules.get(module)
            # A package attribute wins over a submodule of the same name, unless it is the
            # submodule itself (``from . import tasks`` inside the package).
            if facts is None or name not in facts.bindings or \
                    facts.bindings[name] == FromImportBinding(module, name):
                return ModuleSym(submodule)
        if module not in self.modules:
            return External(submodule)
        return self.lookup(module, name)

    # ---- expressions ----

    @guarded(UNKNOWN)
    def resolve(self, expr: Optional[ir.Expr], module: str) -> object:
        if isinstance(expr, ir.Name):
            return self.lookup(module, expr.id)
        if isinstance(expr, ir.Imported):
            if expr.name is None:
                return self.module_symbol(expr.module)
            return self.from_import(expr.module, expr.name)
        if isinstance(expr, ir.Attribute):
            return self.member(self.resolve(expr.value, module), expr.attr)
        if isinstance(expr, ir.Call):
            return self.call(self.resolve(expr.func, module), expr, module)
        if isinstance(expr, ir.Scoped):
            return self.resolve(expr.value, expr.module)
        return UNKNOWN

    def member(self, owner: object, name: str) -> object:
        if isinstance(owner, ModuleSym):
            facts = self.modules[owner.name]
            if name in facts.bindings:
                return self.lookup(owner.name, name)
            submodule = f"{owner.name}.{name}"
            if submodule in self.modules:
                return ModuleSym(submodule)
            return self.lookup(owner.name, name)
        if isinstance(owner, External):
            return External(f"{owner.qualname}.{name}")
        if isinstance(owner, ExtensionSym):
            return self.extension_app(owner) if name == owner.attribute else UNKNOWN
        if isinstance(owner, (AppSym, MemberSym)):
            return MemberSym(owner, name)
        return UNKNOWN

    def call(self, func: object, call: ir.Call, module: str) -> object:
        canonical = celery_name(func)
        if canonical == "Celery":
            return self.app_for(module, call)
        if isinstance(func, External) and func.qualname in CELERY_EXTENSIONS:
            return ExtensionSym(module, call, func.qualname, CELERY_EXTENSIONS[func.qualname])
        if canonical in ("shared_task", "app.task"):
            return self.decorator_call(DecoratorSym(), call, module)
        if isinstance(func, MemberSym) and isinstance(func.owner, AppSym):
            if func.name == "task":
                return self.decorator_call(DecoratorSym(
                    app=func.owner, open_options=func.owner.own_task_method), call, module)
            if func.name == "register_task" and self.tasks is not None:
                return self.tasks.registered(call, module, func.owner)
        if isinstance(func, MemberSym) and isinstance(func.owner, MemberSym) \
                and func.owner.name == "tasks" and func.name == "register" and self.tasks:
            return self.tasks.registered(call, module, func.owner.owner)
        if isinstance(func, DecoratorSym) and self.tasks is not None:
            # ``app.task(name="x")(fetch)``: the decorator applied to a function.
            return self.tasks.applied(func, call, module)
        if isinstance(func, ClassSym):
            if self.is_app_class(func):
                return self.app_of_subclass(module, call, func)
            return InstanceSym(func)
        if isinstance(func, FunctionSym) and self.tasks is not None:
            factory = self.tasks.decorator_factory(func)
            if factory is not None:
                return self.decorator_call(factory, call, module)
        if isinstance(func, FunctionSym):
            app = self.app_factory(func)
            if app is not None:
                return app
            if self.tasks is not None:
                task = self.tasks.made_by(func)
                if task is not None:
                    return TaskSym(task)
        return UNKNOWN

    @guarded(None, memoise=True)
    def app_factory(self, function: FunctionSym) -> Optional[AppSym]:
        """The app a function returns, made there (``def make_celery(app): celery =
        Celery(app.import_name); ...; return celery``, Flask's recipe) or elsewhere: each call
        gives that one app."""
        facts = self.modules.get(function.module)
        defined = facts.functions.get(function.qualname) if facts is not None else None
        if defined is None or not defined.may_return_value():
            return None
        for _, value in defined.returns:
            symbol = self.resolve(value, function.module) if value is not None else None
            if isinstance(symbol, AppSym):
                return symbol
            if isinstance(value, ir.Changed) and value.was is not None:
                # ``celery.Task = ContextTask`` before ``return celery``: still that app.
                symbol = self.resolve(value.was, function.module)
                if isinstance(symbol, AppSym):
                    return dataclasses.replace(symbol, task_class_written=symbol.task_class_written
                                               or "Task" in value.attributes)
        return None

    @guarded(None, memoise=True)
    def app_of_parameter(self, function: FunctionSym, parameter: str) -> Optional[AppSym]:
        """The one Celery app every call of ``function`` that passes a known one passes as
        ``parameter`` (``def register(app): @app.task ...`` called as ``register(celery_app)``):
        index/factories.py."""
        return factories.app_of_parameter(self, function, parameter)

    @guarded(None, memoise=True)
    def app_stored_by(self, factory: FunctionSym, key: Tuple[str, str]) -> Optional[AppSym]:
        """The app a Flask application factory stores on the Flask app it returns
        (``app.extensions["celery"] = ...``, ``app.celery = ...``): index/flask_apps.py."""
        return flask_apps.app_stored_by(self, factory, key)

    def plain_function(self, symbol: object) -> Optional["FunctionFacts"]:
        """The facts of ``symbol`` when it is a module-level function with no decorator (not a
        task, nor anything a decorator the analyser does not know could have made)."""
        if not isinstance(symbol, FunctionSym) or "." in symbol.qualname:
            return None
        defining = self.modules.get(symbol.module)
        function = defining.functions.get(symbol.qualname) if defining else None
        if function is None or function.decorators or function.is_method:
            return None
        return function

    def decorator_call(self, base: DecoratorSym, call: ir.Call,
                       module: Optional[str] = None) -> object:
        """``shared_task(bind=True)`` and friends: a decorator with options; ``app.task(func,
        ...)`` applies it to ``func`` at once (the task Celery makes of it)."""
        if call.positional:
            if module is None or self.tasks is None:
                return UNKNOWN
            options = {a.keyword: a.value for a in call.args if a.keyword}
            decorator = DecoratorSym(options={**base.options, **options}, app=base.app,
                                     open_options=base.open_options
                                     or any(a.star == "**" for a in call.args))
            return self.tasks.applied(decorator, call, module)
        options = dict(base.options)
        open_options = base.open_options
        for arg in call.args:
            if arg.star == "**":
                open_options = True
            elif arg.keyword:
                options[arg.keyword] = arg.value
        return DecoratorSym(options=options, app=base.app, open_options=open_options)

    def app_by_its_calls(self, module: str, name: str, expr: ir.Expr) -> Optional[AppSym]:
        """An app whose class is loaded at run time (``celery_class = import_string(setting)``,
        ``app = celery_class(main="mayan")``), known by the Celery app methods its module calls
        on it at module level (``app.config_from_object(...)``, ``app.autodiscover_tasks()``):
        no other object has them. Its configuration is unknown (``AppSym.loaded``)."""
        if not isinstance(expr, ir.Call):
            return None
        facts = self.modules.get(module)
        for root in facts.roots if facts is not None else ():
            if root.scope:
                continue
            for node in ir.walk(root.expr):
                if isinstance(node, ir.Call) and isinstance(node.func, ir.Attribute) \
                        and node.func.attr in APP_ONLY_METHODS \
                        and isinstance(node.func.value, ir.Name) and node.func.value.id == name:
                    key = id(expr)
                    if key not in self._apps:
                        self._apps[key] = AppSym(module, expr, variable=name,
                                                 loaded=f"{name} = {expr.text or '...'}")
                    return self._apps[key]
        return None

    def extension_app(self, extension: ExtensionSym) -> AppSym:
        """The app a Flask extension makes (``FlaskCeleryExt(app).celery``), once per call
        making the extension. flask-celeryext's makes it with Flask's recipe, its settings from
        the Flask config and its task class set to run in the app context (a project may give
        it its own ``create_celery_app``): its configuration is unknown, and its task class is
        not Celery's (``AppSym.task_class_written``)."""
        key = id(extension.call)
        if key not in self._apps:
            self._apps[key] = AppSym(extension.module, extension.call,
                                     loaded=f"{extension.qualname}().{extension.attribute}",
                                     task_class_written=True)
        return self._apps[key]

    def app_for(self, module: str, call: ir.Call) -> AppSym:
        key = id(call)
        if key not in self._apps:
            self._apps[key] = AppSym(module, call)
        return self._apps[key]

    @guarded(None)
    def as_decorator(self, symbol: object) -> Optional[DecoratorSym]:
        """``symbol`` as a task decorator, whether called (``app.task()``) or bare (``app.task``)."""
        if isinstance(symbol, DecoratorSym):
            return symbol
        canonical = celery_name(symbol)
        if canonical in ("shared_task", "app.task"):
            return DecoratorSym()
        if isinstance(symbol, MemberSym) and isinstance(symbol.owner, AppSym) \
                and symbol.name == "task":
            return DecoratorSym(app=symbol.owner, open_options=symbol.owner.own_task_method)
        if isinstance(symbol, FunctionSym) and self.tasks is not None:
            return self.tasks.bare_decorator(symbol)
        if isinstance(symbol, InstanceSym) and self.tasks is not None:
            return self.tasks.instance_decorator(symbol.cls)
        return None

    def app_of_subclass(self, module: str, call: ir.Call, cls: ClassSym) -> AppSym:
        """``IndicoCelery("indico")``: an app, configured by its class too (so not known), whose
        ``task`` decorator is Celery's unless the class defines its own."""
        key = id(call)
        if key not in self._apps:
            self._apps[key] = AppSym(module, call, loaded=f"{cls.qualname}, a subclass of Celery",
                                     own_task_method=self.defines_method(cls, "task"))
        return self._apps[key]

    def is_app_class(self, symbol: object) -> bool:
        """Whether a class of the project derives from ``celery.Celery``."""
        return isinstance(symbol, ClassSym) and self._derives_from(
            symbol, lambda base: celery_name(base) == "Celery")

    @guarded(False)
    def defines_method(self, symbol: ClassSym, name: str) -> bool:
        """Whether the class, or a project class between it and Celery's, defines ``name``."""
        facts = self.modules[symbol.module].classes.get(symbol.qualname)
        if facts is None:
            return True  # not known: as if it did
        if name in facts.methods:
            return True
        return any(self.defines_method(base, name) for base in
                   (self.resolve(expr, symbol.module) for expr in facts.bases)
                   if isinstance(base, ClassSym))

    def is_task_base(self, symbol: object) -> bool:
        """Whether a class derives from ``celery.Task`` (or ``app.Task``)."""
        return self._derives_from(symbol, lambda base: celery_name(base) == "Task" or (
            isinstance(base, MemberSym) and base.name == "Task"
            and isinstance(base.owner, AppSym)))

    @guarded(False)
    def _derives_from(self, symbol: object, is_root, seen: Optional[Set] = None) -> bool:
        """Whether ``symbol`` is a root class (``is_root``) or a project class deriving from
        one, through any of its bases."""
        if is_root(symbol):
            return True
        if not isinstance(symbol, ClassSym):
            return False
        seen = seen or set()
        if symbol in seen:
            return False
        seen.add(symbol)
        facts = self.modules[symbol.module].classes.get(symbol.qualname)
        return facts is not None and any(
            self._derives_from(self.resolve(base, symbol.module), is_root, seen)
            for base in facts.bases)
