"""The task index: every Celery task in the analysed code, found without importing it.

A function is a task when its outermost decorator resolves to Celery's: ``@app.task`` on a
``Celery(...)`` instance (wherever it was created), ``@shared_task``, ``@current_app.task``, or a
project function that returns one of those. A class is a task when it derives from
``celery.Task`` and is registered with ``app.register_task`` / ``app.tasks.register``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.model import ClassFacts, FunctionFacts, Params
from celery_chain_lint.index.factories import factory_parameter
from celery_chain_lint.index.resolver import REGISTERING_METHODS, guarded
from celery_chain_lint.index.symbols import (
    UNKNOWN,
    AppSym,
    ClassSym,
    DecoratorSym,
    External,
    FunctionSym,
    InstanceSym,
    TaskSym,
)

if TYPE_CHECKING:
    from celery_chain_lint.index.resolver import Resolver

MISSING = object()


def literal(expr: Optional[ir.Expr], default: Any = MISSING) -> Any:
    """The Python value of a literal expression (constants, and tuples/lists of them)."""
    if isinstance(expr, ir.Const):
        return expr.value
    if isinstance(expr, ir.Sequence) and not expr.has_splat:
        values = [literal(item) for item in expr.items]
        if all(value is not MISSING for value in values):
            return tuple(values) if expr.kind == "tuple" else values
    return default


@dataclass(eq=False)
class Task:
    module: str
    qualname: str  # of the function, or of the class for class-based tasks
    path: str
    span: ir.Span  # the ``def`` (or ``class``) statement
    display: str  # the name a reader knows it by
    name: Optional[str]  # registered name; None when it is not a literal
    params: Optional[Params]  # what callers pass; None when not statically known
    bind: bool = False
    options: Dict[str, ir.Expr] = field(default_factory=dict)
    open_options: bool = False  # options passed through ``**kwargs`` we cannot see
    app: Optional[AppSym] = None
    function: Optional[FunctionFacts] = None
    class_facts: Optional[ClassFacts] = None
    base: Optional[ClassSym] = None  # ``base=`` option or the task class itself

    @property
    def self_name(self) -> Optional[str]:
        """The name its body calls the task itself by: the first parameter of a ``bind=True``
        function or of a class-based task's ``run`` (``self.retry()``, ``self.replace()``)."""
        items = self.function.params.items if self.function is not None else ()
        return items[0].name if items and (self.bind or self.class_facts is not None) else None

    def option(self, name: str) -> Optional[ir.Expr]:
        """A task option as written: decorator keyword first, then the task's base class."""
        return self.options.get(name)

    def literal_option(self, name: str, default: Any = MISSING) -> Any:
        return literal(self.option(name), default)

    def describe(self) -> dict:
        """What the runtime harness needs to build a shadow of this task."""
        params = None
        if self.params is not None:
            params = [{"name": p.name, "kind": p.kind, "has_default": p.has_default}
                      for p in self.params.items]
        options = {}
        for key, value in self.options.items():
            constant = literal(value)
            if constant is not MISSING:
                options[key] = constant
        return {"name": self.name, "display": self.display, "module": self.module,
                "path": self.path, "line": self.span.line, "params": params,
                "bind": self.bind, "options": options,
                "class_based": self.class_facts is not None}


class TaskIndex:
    def __init__(self, resolver: "Resolver",
                 may_reach: Callable[[str, ir.Expr], bool] = lambda module, expr: True):
        self.resolver = resolver
        self.modules = resolver.modules
        self._by_function: Dict[Tuple[str, str], Optional[Task]] = {}
        self._by_class: Dict[Tuple[str, str], Optional[Task]] = {}
        self._in_progress: set = set()
        resolver.tasks = self
        # (module, expr) -> False when ``expr`` cannot name anything Celery-related
        # (``Project.may_reach``): ``all`` does not resolve it.
        self.may_reach = may_reach

    # ---- function tasks ----

    @guarded(None)
    def for_function(self, module: str, qualname: str) -> Optional[Task]:
        key = (module, qualname)
        if key in self._by_function:
            return self._by_function[key]
        if key in self._in_progress:
            return None
        self._in_progress.add(key)
        try:
            task = self._function_task(module, self.modules[module].functions[qualname])
        finally:
            self._in_progress.discard(key)
        self._by_function[key] = task
        return task

    def _function_task(self, module: str, function: FunctionFacts) -> Optional[Task]:
        if not function.decorators or function.is_method:
            return None
        # Celery must see the function itself: its decorator is the outermost one.
        decorator = self.resolver.as_decorator(self.resolver.resolve(function.decorators[0], module))
        if decorator is None:
            decorator = self.factory_decorator(module, function)
        if decorator is None:
            return None
        bind = literal(decorator.options.get("bind"), False)
        params: Optional[Params] = function.params
        if not all(self.passes_through(d, module) for d in function.decorators[1:]) \
                or not isinstance(bind, bool) or decorator.open_options:
            params = None  # an inner decorator may change the signature; ``bind`` unknown
        elif bind:
            params = params.without_first()
        return self._task(module, function.qualname, function.span, function.name, decorator,
                          params=params, bind=bind is True, function=function)

    def factory_decorator(self, module: str, function: FunctionFacts) -> Optional[DecoratorSym]:
        """``def register(app): @app.task def add(x, y): ...``: the decorator of the app the
        calls of ``register`` pass (index/factories.py), when they pass one."""
        found = factory_parameter(function.qualname, function.decorators[0])
        if found is None:
            return None
        enclosing, parameter = found
        app = self.resolver.app_of_parameter(FunctionSym(module, enclosing), parameter)
        if app is None:
            return None
        base = DecoratorSym(app=app, open_options=app.own_task_method)
        decorator = function.decorators[0]
        if isinstance(decorator, ir.Call):
            made = self.resolver.decorator_call(base, decorator)
            return made if isinstance(made, DecoratorSym) else None
        return base

    def applied(self, decorator: DecoratorSym, call: ir.Call, module: str) -> object:
        """``app.task(fetch)`` (or ``app.task(name=...)(fetch)``): the task Celery makes of a
        function of the analysed code with no decorator of its own, named after the function's
        module and name (``gen_task_name``); the function itself stays a plain function."""
        if len(call.positional) != 1 or call.has_splat:
            return UNKNOWN
        symbol = self.resolver.resolve(call.positional[0], module)
        function = self.resolver.plain_function(symbol)
        if function is None:
            return UNKNOWN
        task = self.applied_to(decorator, symbol.module, function)
        return TaskSym(task) if task is not None else UNKNOWN

    def applied_to(self, decorator: DecoratorSym, module: str,
                   function: FunctionFacts) -> Optional[Task]:
        key = (module, function.qualname, id(decorator.app.call) if decorator.app else None,
               tuple(sorted((k, getattr(v, "text", "")) for k, v in decorator.options.items())))
        cache = self.__dict__.setdefault("_applied", {})
        if key not in cache:
            bind = literal(decorator.options.get("bind"), False)
            params: Optional[Params] = function.params
            if not isinstance(bind, bool) or decorator.open_options:
                params = None
            elif bind:
                params = params.without_first()
            cache[key] = self._task(module, function.qualname, function.span, function.name,
                                    decorator, params=params, bind=bind is True,
                                    function=function)
        return cache[key]

    def _task(self, module: str, qualname: str, span: ir.Span, display: str,
              decorator: DecoratorSym, **fields) -> Task:
        facts = self.modules[module]
        name_option = decorator.options.get("name")
        if name_option is None:
            name = f"{module}.{display}"
        else:
            name = literal(name_option, None)
            name = name if isinstance(name, str) else None
        base = self.resolver.resolve(decorator.options["base"], module) \
            if "base" in decorator.options else None
        return Task(module=module, qualname=qualname, path=facts.path, span=span,
                    display=display, name=name, options=dict(decorator.options),
                    open_options=decorator.open_options, app=decorator.app,
                    base=base if isinstance(base, ClassSym) else None, **fields)

    def passes_through(self, decorator: ir.Expr, module: str) -> bool:
        """Whether an inner decorator of a task keeps its parameters: a project function
        returning a ``functools.wraps(f)`` wrapper that calls ``f(*args, **kwargs)``
        (``FunctionFacts.passes_through``). Celery sees the wrapper's ``(*args, **kwargs)``
        and checks nothing when it sends; the wrapped function raises TypeError on the
        worker, so the task's real parameters are the function's."""
        symbol = self.resolver.resolve(decorator, module)
        if not isinstance(symbol, FunctionSym):
            return False
        facts = self.modules[symbol.module].functions.get(symbol.qualname)
        if facts is None or facts.decorators or not facts.may_return_value():
            return False
        wraps = facts.passes_through
        if wraps is None:
            return False
        found = self.resolver.resolve(wraps, symbol.module)
        return isinstance(found, External) and found.qualname == "functools.wraps"

    @guarded(None, memoise=True)
    def made_by(self, function: FunctionSym) -> Optional[Task]:
        """The task a factory function makes and returns (``def make_sender(channel):
        @app.task(...) def send(...): ...; return send``): the nested function, a task when
        its decorator resolves where it is written (a decorator taken from the factory's
        parameters is not followed)."""
        facts = self.modules[function.module].functions.get(function.qualname)
        if facts is None or facts.is_async or not facts.may_return_value():
            return None
        values = [value for _, value in facts.returns if value is not None]
        if len(values) == 1 and isinstance(values[0], ir.Call):
            return self._applied_in(function, values[0])
        if len(values) != 1 or not (isinstance(values[0], ir.Opaque)
                                    and values[0].kind == "local function"):
            return None
        nested = f"{function.qualname}.<locals>.{values[0].text}"
        if nested not in self.modules[function.module].functions:
            return None
        return self.for_function(function.module, nested)

    def _applied_in(self, function: FunctionSym, call: ir.Call) -> Optional[Task]:
        """``def register(app): def fetch(...): ...; return app.task(fetch)`` (or
        ``app.task(name=...)(fetch)``), ``app`` given by the calls of ``register``."""
        if len(call.positional) != 1 or call.has_splat:
            return None
        argument = call.positional[0]
        if not (isinstance(argument, ir.Opaque) and argument.kind == "local function"):
            return None
        nested = f"{function.qualname}.<locals>.{argument.text}"
        facts = self.modules[function.module].functions.get(nested)
        found = factory_parameter(nested, call.func)
        if facts is None or facts.decorators or facts.is_async or found is None:
            return None
        app = self.resolver.app_of_parameter(FunctionSym(function.module, found[0]), found[1])
        if app is None:
            return None
        options = {a.keyword: a.value for a in call.args if a.keyword}
        base = DecoratorSym(options=options, app=app, open_options=app.own_task_method
                            or any(a.star == "**" for a in call.args))
        decorator = self.resolver.decorator_call(base, call.func) \
            if isinstance(call.func, ir.Call) else base
        if not isinstance(decorator, DecoratorSym):
            return None
        return self.applied_to(decorator, function.module, facts)

    # ---- project decorators that wrap Celery's ----

    @guarded(None, memoise=True)
    def decorator_factory(self, function: FunctionSym) -> Optional[DecoratorSym]:
        """``def retrying_task(**kw): return shared_task(autoretry_for=..., **kw)``."""
        facts = self.modules[function.module].functions.get(function.qualname)
        if facts is None:
            return None
        for _, value in facts.returns:
            symbol = self.resolver.resolve(value, function.module) if value is not None else None
            if isinstance(symbol, DecoratorSym):
                return DecoratorSym(options=dict(symbol.options), app=symbol.app)
        return None

    @guarded(None, memoise=True)
    def bare_decorator(self, function: FunctionSym) -> Optional[DecoratorSym]:
        """``def my_task(fn): return app.task(fn, ...)`` used as ``@my_task``."""
        facts = self.modules[function.module].functions.get(function.qualname)
        if facts is None or not facts.params.items:
            return None
        first = facts.params.items[0].name
        for _, value in facts.returns:
            if not isinstance(value, ir.Call) or len(value.positional) != 1:
                continue
            argument = value.positional[0]
            if not (isinstance(argument, ir.Opaque) and argument.kind == "local"):
                continue
            func = self.resolver.resolve(value.func, function.module)
            decorator = self.resolver.as_decorator(func)
            if decorator is not None and argument.text == first:
                options = {a.keyword: a.value for a in value.args if a.keyword}
                return DecoratorSym(options={**decorator.options, **options}, app=decorator.app)
        return None

    @guarded(None, memoise=True)
    def instance_decorator(self, cls: ClassSym) -> Optional[DecoratorSym]:
        """``@retryable_task(name=..., max_retries=10)`` (treeherder): an instance of a project
        class whose own ``__call__(self, f)`` returns Celery's decorator applied to ``f`` or
        to a function it defines (a wrapper of ``f``): ``return shared_task(*self.args,
        **self.kwargs)(inner)``. What the instance was given, the options among them, is not
        followed: open, the name unknown (the task's arguments are not checked, its name is
        not guessed)."""
        facts = self.modules[cls.module].classes.get(cls.qualname)
        qualname = facts.methods.get("__call__") if facts is not None else None
        method = self.modules[cls.module].functions.get(qualname) if qualname else None
        if method is None or method.is_async or len(method.params.items) != 2:
            return None
        values = [value for _, value in method.returns if value is not None]
        if len(values) != 1 or not isinstance(values[0], ir.Call) or len(values[0].args) != 1:
            return None
        applied = values[0]
        argument = applied.args[0]
        wrapped = method.params.items[1].name
        if argument.keyword or argument.star or not isinstance(argument.value, ir.Opaque) or not (
                argument.value.kind == "local function"
                or argument.value.kind == "local" and argument.value.text == wrapped):
            return None
        decorator = self.resolver.as_decorator(self.resolver.resolve(applied.func, cls.module))
        if decorator is None:
            return None
        options = dict(decorator.options)
        options.setdefault("name", ir.Opaque(kind="unknown name"))
        return DecoratorSym(options=options, app=decorator.app, open_options=True)

    # ---- class-based tasks ----

    def registered(self, call: ir.Call, module: str, app: AppSym) -> object:
        """``app.register_task(Charge())`` (or the class itself) returns the task instance."""
        if not call.positional:
            return UNKNOWN
        target = self.resolver.resolve(call.positional[0], module)
        cls = target.cls if isinstance(target, InstanceSym) else target
        if not isinstance(cls, ClassSym):
            return UNKNOWN
        task = self.for_class(cls, app)
        return TaskSym(task) if task is not None else UNKNOWN

    @guarded(None)
    def for_class(self, cls: ClassSym, app: Optional[AppSym] = None) -> Optional[Task]:
        key = (cls.module, cls.qualname)
        if key not in self._by_class:
            self._by_class[key] = self._class_task(cls, app)
        return self._by_class[key]

    def _class_task(self, cls: ClassSym, app: Optional[AppSym]) -> Optional[Task]:
        facts = self.modules[cls.module].classes.get(cls.qualname)
        if facts is None or not self.resolver.is_task_base(cls):
            return None
        run = self._method(cls, "run")
        params = run.params.without_first() if run is not None else None
        options = dict(facts.attributes)
        name = literal(options.get("name"), None)
        if "name" not in options:
            name = f"{cls.module}.{facts.name}"
        return Task(module=cls.module, qualname=cls.qualname, path=self.modules[cls.module].path,
                    span=facts.span, display=facts.name, name=name if isinstance(name, str) else None,
                    params=params, options=options, app=app, function=run, class_facts=facts,
                    base=cls)

    def _method(self, cls: ClassSym, name: str, depth: int = 0) -> Optional[FunctionFacts]:
        facts = self.modules[cls.module].classes.get(cls.qualname)
        if facts is None or depth > 20:
            return None
        if name in facts.methods:
            return self.modules[cls.module].functions.get(facts.methods[name])
        for base in facts.bases:
            symbol = self.resolver.resolve(base, cls.module)
            if isinstance(symbol, ClassSym):
                found = self._method(symbol, name, depth + 1)
                if found is not None:
                    return found
        return None

    # ---- the whole index ----

    def all(self) -> List[Task]:
        """Every task in the analysed modules, function- and class-based."""
        tasks = []
        for module, facts in self.modules.items():
            for qualname, function in facts.functions.items():
                if function.decorators and not self.may_reach(module, function.decorators[0]) \
                        and factory_parameter(qualname, function.decorators[0]) is None:
                    continue  # not a task decorator: nothing to resolve
                task = self.for_function(module, qualname)
                if task is not None:
                    tasks.append(task)
            for root in facts.roots:
                if not self.may_reach(module, root.expr):
                    continue
                for node in ir.walk(root.expr):
                    # A call gives a class-based task only by registering it (Resolver.call):
                    # the other calls, most of them, are not worth resolving here.
                    if isinstance(node, ir.Call) and isinstance(node.func, ir.Attribute) \
                            and node.func.attr in REGISTERING_METHODS:
                        symbol = self.resolver.resolve(node, module)
                        if isinstance(symbol, TaskSym) and symbol.task.class_facts is not None:
                            tasks.append(symbol.task)
                    # ``app.task(fetch)`` or ``app.task(name=...)(fetch)``, assigned or not:
                    # Celery registers the task under its name either way.
                    elif isinstance(node, ir.Call) and node.positional and (
                            _method_call(node.func, "task") or isinstance(node.func, ir.Call)
                            and _method_call(node.func.func, "task")):
                        symbol = self.resolver.resolve(node, module)
                        if isinstance(symbol, TaskSym) and symbol.task.class_facts is None:
                            tasks.append(symbol.task)
        unique = {id(task): task for task in tasks}
        return list(unique.values())

    def by_name(self, name: str) -> Optional[Task]:
        """The task registered under ``name``; None when absent or ambiguous."""
        if not hasattr(self, "_names"):
            names: Dict[str, List[Task]] = {}
            for task in self.all():
                if task.name is not None:
                    names.setdefault(task.name, []).append(task)
            self._names = {key: found[0] for key, found in names.items() if len(found) == 1}
        return self._names.get(name)


def _method_call(func: ir.Expr, method: str) -> bool:
    return isinstance(func, ir.Attribute) and func.attr == method
