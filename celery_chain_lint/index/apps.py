"""What the analysed code configures on each Celery app, read without importing it.

For every ``Celery(...)`` app created at module level, ``AppIndex.config(app)`` collects the
settings the rules need (result backend, ``task_ignore_result``, serializers) from, in Celery's
order of precedence (observed on Celery 5.7: values written through ``app.conf`` and
``Celery(...)`` keywords win over ``config_from_object``, whatever the statement order):

1. ``app.config_from_object(source, namespace=...)``: an analysed module (``"proj.celeryconfig"``,
   ``import celeryconfig``), a class, or ``"django.conf:settings"``, read from the Django
   settings module of the analysed code (named by ``os.environ.setdefault(
   "DJANGO_SETTINGS_MODULE", "proj.settings")`` (nothing when the module it names is not in
   the tree), else the only module called ``settings`` when it sits beside the app's module, as
   in Django's layout, and is not itself reading ``django.conf.settings`` (a plugin's defaults);
2. ``Celery(..., backend=..., result_backend=..., task_ignore_result=...)``;
3. module-level ``app.conf.<name> = value`` and ``app.conf.update(<name>=value, ...)`` (or in
   the function creating the app, ``make_celery``), ``app.conf.update(flask_app.config)``
   reading a Flask config written in literals (``index/flask.py``).

Each setting is a ``Setting``: ``absent`` (Celery's default applies), ``literal`` (its value is
known) or ``unknown`` (read from the environment, computed, set inside a function, or from a
source that cannot be read). Rules say nothing about an unknown setting. Note that Celery also
reads the ``CELERY_RESULT_BACKEND`` environment variable when no backend is configured.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.model import (FromImportBinding, ImportBinding, ModuleFacts,
                                          ValueBinding)
from celery_chain_lint.index import flask_apps
from celery_chain_lint.index.symbols import (AppSym, ClassSym, ExtensionSym, ModuleSym,
                                              ValueSym)

from celery_chain_lint.index.flask import NOT_LITERAL, flask_config

if TYPE_CHECKING:
    from celery_chain_lint.index.resolver import Resolver
    from celery_chain_lint.index.tasks import Task

ABSENT, LITERAL, UNKNOWN = "absent", "literal", "unknown"

# The settings the rules read: new-style name -> old-style (Celery 3) name.
SETTINGS = {
    "result_backend": "CELERY_RESULT_BACKEND",
    "task_ignore_result": "CELERY_IGNORE_RESULT",
    "task_serializer": "CELERY_TASK_SERIALIZER",
    "result_serializer": "CELERY_RESULT_SERIALIZER",
    "accept_content": "CELERY_ACCEPT_CONTENT",
    "task_inherit_parent_priority": "CELERY_INHERIT_PARENT_PRIORITY",
    "broker_url": "BROKER_URL",
    "broker_transport_options": "BROKER_TRANSPORT_OPTIONS",
}
# ``Celery(...)`` keywords that set a setting under another name.
CELERY_KEYWORDS = {"backend": "result_backend", "broker": "broker_url"}
DEFAULTS = {"task_serializer": "json", "result_serializer": "json", "task_ignore_result": False,
            "task_inherit_parent_priority": False, "broker_transport_options": {}}
DJANGO_SETTINGS_SOURCE = "django.conf:settings"


@dataclass(frozen=True)
class Setting:
    state: str  # ABSENT, LITERAL or UNKNOWN
    value: Any = None
    # Where it was set, for messages: "fixtures/etl/celery.py:7".
    origin: Optional[str] = None

    @property
    def known(self) -> bool:
        return self.state != UNKNOWN


ABSENT_SETTING = Setting(ABSENT)
UNKNOWN_SETTING = Setting(UNKNOWN)


@dataclass
class AppConfig:
    app: AppSym
    path: str  # of the module that creates the app
    settings: Dict[str, Setting] = field(default_factory=dict)
    # A configuration source that could not be read may set anything.
    opaque_source: Optional[str] = None

    def get(self, name: str) -> Setting:
        if name in self.settings:
            return self.settings[name]
        return UNKNOWN_SETTING if self.opaque_source is not None else ABSENT_SETTING

    def value(self, name: str, default: Any = None) -> Tuple[str, Any]:
        """(state, value) with Celery's default for an absent setting."""
        setting = self.get(name)
        if setting.state == ABSENT:
            return ABSENT, DEFAULTS.get(name, default)
        return setting.state, setting.value

    @property
    def backend(self) -> Setting:
        return self.get("result_backend")

    def backend_kind(self) -> str:
        """"none", "rpc", "unknown" or "configured"."""
        setting = self.backend
        if setting.state == UNKNOWN:
            return "unknown"
        value = setting.value
        if setting.state == ABSENT or value in (None, "", "disabled"):
            return "none"
        if not isinstance(value, str):
            return "unknown"
        if value.split(":", 1)[0].lower() == "rpc":
            return "rpc"
        return "configured"

    @property
    def ignore_result(self) -> Setting:
        return self.get("task_ignore_result")

    @property
    def serializer(self) -> Setting:
        """``task_serializer`` (Celery's default, "json", when absent)."""
        setting = self.get("task_serializer")
        if setting.state == ABSENT:
            return Setting(ABSENT, DEFAULTS["task_serializer"])
        return setting

    @property
    def result_serializer(self) -> Setting:
        setting = self.get("result_serializer")
        if setting.state == ABSENT:
            return Setting(ABSENT, DEFAULTS["result_serializer"])
        return setting


class AppIndex:
    def __init__(self, resolver: "Resolver"):
        self.resolver = resolver
        self.modules: Dict[str, ModuleFacts] = resolver.modules
        self._configs: Dict[int, AppConfig] = {}
        self._apps: Optional[List[AppSym]] = None
        self._task_class_replaced: Dict[int, bool] = {}

    # ---- the apps ----

    def apps(self) -> List[AppSym]:
        """Every ``Celery(...)`` app bound to a module-level name, once each; the apps of
        Flask extensions (``ext = FlaskCeleryExt(app)``) and those a Flask factory keeps
        (``celery = flask_app.extensions["celery"]``) too."""
        if self._apps is None:
            found: Dict[int, AppSym] = {}
            for module, facts in self.modules.items():
                for name, binding in facts.bindings.items():
                    if isinstance(binding, ValueBinding) and (
                            isinstance(binding.expr, ir.Call)
                            or flask_apps.owner_and_key(binding.expr) is not None):
                        symbol = self.resolver.lookup(module, name)
                        if isinstance(symbol, ExtensionSym):
                            symbol = self.resolver.extension_app(symbol)
                        if isinstance(symbol, AppSym):
                            found.setdefault(id(symbol.call), symbol)
            self._apps = list(found.values())
        return self._apps

    def same(self, left: Optional[AppSym], right: Optional[AppSym]) -> bool:
        return left is not None and right is not None and left.call is right.call

    def app_of(self, expr: Optional[ir.Expr], module: str) -> Optional[AppSym]:
        symbol = self.resolver.resolve(expr, module) if expr is not None else None
        return symbol if isinstance(symbol, AppSym) else None

    def app_of_task(self, task: "Task") -> Optional[AppSym]:
        """The task's app; for ``shared_task``/``current_app.task`` the project's only app."""
        if task.app is not None:
            return task.app
        apps = self.apps()
        return apps[0] if len(apps) == 1 else None

    def task_class_replaced(self, app: AppSym) -> bool:
        """Whether the app's default task class is not Celery's: ``Celery(task_cls=...)``,
        ``app.Task = OnCommitTask`` at module level in any module (as the config's writes are
        read), or written by the function making the app (``AppSym.task_class_written``)."""
        key = id(app.call)
        if key not in self._task_class_replaced:
            self._task_class_replaced[key] = app.task_class_written \
                or app.call.keyword("task_cls") is not None or any(
                isinstance(target, ir.Attribute) and target.attr == "Task"
                and self.same(self.app_of(target.value, module), app)
                for module in self._module_order(app.module)
                for target, _ in self.modules[module].attribute_assignments)
        return self._task_class_replaced[key]

    def default_class_replaced(self, task: "Task") -> bool:
        """Whether a task made without ``base=`` may get its class from an app whose default
        task class is not Celery's (for a ``shared_task``, any app of the project)."""
        apps = [task.app] if task.app is not None else self.apps()
        return any(self.task_class_replaced(app) for app in apps)

    # ---- configuration ----

    def config(self, app: AppSym) -> AppConfig:
        key = id(app.call)
        if key not in self._configs:
            self._configs[key] = self._read(app)
        return self._configs[key]

    def _read(self, app: AppSym) -> AppConfig:
        facts = self.modules[app.module]
        config = AppConfig(app, facts.path)
        writes: List[Tuple[str, Setting]] = []  # in order of precedence, last wins

        # 1. config_from_object / config_source: the lowest precedence.
        # ``config_from_object`` reads with the app's namespace unless given its own.
        app_namespace = app.call.keyword("namespace") or ir.Const(None)
        sources = [(self._where(app.module, app.call), app.call.keyword("config_source"),
                    app_namespace)]
        for module, scope, call in self._app_calls(app, "config_from_object"):
            if scope:
                config.opaque_source = f"config_from_object() inside {scope}()"
                continue
            if not call.positional or call.has_splat:
                config.opaque_source = "config_from_object(...)"
                continue
            sources.append((self._where(module, call), call.positional[0],
                            call.keyword("namespace") or app_namespace))
        for where, source, namespace in sources:
            if source is None:
                continue
            read = self._read_source(source, namespace, app.module)
            if read is None:
                config.opaque_source = f"config_from_object() at {where}"
            else:
                writes.extend(read)

        # 2. Celery(...) keywords.
        if app.loaded is not None:
            config.opaque_source = f"an app class loaded at run time ({app.loaded})"
        if app.call.has_splat:
            config.opaque_source = f"Celery(**...) at {self._where(app.module, app.call)}"
        for arg in app.call.args:
            if arg.keyword is None or arg.star:
                continue
            name = CELERY_KEYWORDS.get(arg.keyword, arg.keyword)
            if name in SETTINGS:
                writes.append((name, self._setting(arg.value, app.module)))

        # 3. app.conf.<name> = value and app.conf.update(...), module by module (the app's first).
        for module in self._module_order(app.module):
            module_facts = self.modules[module]
            for target, value in module_facts.attribute_assignments:
                if isinstance(target, ir.Attribute) and isinstance(target.value, ir.Attribute) \
                        and target.value.attr == "conf" \
                        and self.same(self.app_of(target.value.value, module), app):
                    name = _setting_name(target.attr, None)
                    if name is not None:
                        writes.append((name, self._setting(value, module)))
            # Inside a function: whether and when it runs is unknown, so is what it writes.
            for _, target in module_facts.conf_writes_in_functions:
                if isinstance(target, ir.Attribute) and isinstance(target.value, ir.Attribute) \
                        and self.same(self.app_of(target.value.value, module), app):
                    name = _setting_name(target.attr, None)
                    if name is not None:
                        writes.append((name, UNKNOWN_SETTING))
        for module, scope, call in self._app_calls(app, "update", on_conf=True):
            updates = self._update_arguments(call, module, scope)
            if updates is None:
                for name in SETTINGS:
                    writes.append((name, UNKNOWN_SETTING))
                continue
            # Inside a function, whether and when it runs is unknown; unless it is the
            # function that creates the app (``make_celery``): it runs as the app is made.
            definite = not scope or self._creates(app, module, scope)
            for name, setting in updates:
                writes.append((name, setting if definite else UNKNOWN_SETTING))

        for name, setting in writes:
            config.settings[name] = setting
        return config

    def _module_order(self, first: str) -> List[str]:
        return [first] + sorted(m for m in self.modules if m != first)

    def _app_calls(self, app: AppSym, method: str, on_conf: bool = False):
        """(module, scope, call) for ``app.<method>(...)`` (``app.conf.<method>`` if on_conf)."""
        for module in self._module_order(app.module):
            for root in self.modules[module].roots:
                for node in ir.walk(root.expr):
                    if not (isinstance(node, ir.Call) and isinstance(node.func, ir.Attribute)
                            and node.func.attr == method):
                        continue
                    owner = node.func.value
                    if on_conf:
                        if not (isinstance(owner, ir.Attribute) and owner.attr == "conf"):
                            continue
                        owner = owner.value
                    if self.same(self.app_of(owner, module), app):
                        yield module, root.scope, node

    def _creates(self, app: AppSym, module: str, scope: str) -> bool:
        """Whether ``scope`` (a function of ``module``) is the function creating ``app``."""
        facts = self.modules.get(module)
        function = facts.functions.get(scope) if facts is not None else None
        span = app.call.span
        return (function is not None and app.module == module and span is not None
                and function.span.line <= span.line <= function.span.end_line
                and not any(other.span.line <= span.line <= other.span.end_line
                            for name, other in facts.functions.items()
                            if name.startswith(scope + ".<locals>.")))

    def _update_arguments(self, call: ir.Call, module: str,
                          scope: str = "") -> Optional[List[Tuple[str, Setting]]]:
        """``conf.update(a=1, **{...})`` / ``conf.update({"a": 1})`` /
        ``conf.update(flask_app.config)``; None when not readable."""
        found: List[Tuple[str, Setting]] = []
        for arg in call.args:
            if arg.keyword:
                name = _setting_name(arg.keyword, None)
                if name is not None:
                    found.append((name, self._setting(arg.value, module)))
                continue
            if not arg.star and isinstance(arg.value, ir.Attribute) \
                    and arg.value.attr == "config":
                flask = flask_config(self, arg.value.value, module, scope)
                if flask is None:
                    return None
                for key, value, where in flask:
                    name = _setting_name(key, None)
                    if name is not None:
                        found.append((name, UNKNOWN_SETTING if value is NOT_LITERAL
                                      else Setting(LITERAL, value, where)))
                continue
            mapping = self._dict(arg.value, module)
            if mapping is None:
                return None
            for key, (value, value_module) in mapping.items():
                name = _setting_name(key, None)
                if name is not None:
                    found.append((name, self._setting(value, value_module)))
        return found

    def _dict(self, expr: ir.Expr, module: str) -> Optional[Dict[str, Tuple[ir.Expr, str]]]:
        if isinstance(expr, (ir.Name, ir.Attribute)):
            symbol = self.resolver.resolve(expr, module)
            if isinstance(symbol, ValueSym):
                expr, module = symbol.expr, symbol.module
        if not isinstance(expr, ir.Dict):
            return None
        out = {}
        for key, value in zip(expr.keys, expr.values):
            if not (isinstance(key, ir.Const) and isinstance(key.value, str)):
                return None
            out[key.value] = (value, module)
        return out

    # ---- configuration sources ----

    def _read_source(self, source: ir.Expr, namespace_expr: Optional[ir.Expr],
                     module: str) -> Optional[List[Tuple[str, Setting]]]:
        """The settings a configuration object sets; None when it cannot be read."""
        namespace = None
        if namespace_expr is not None:
            namespace = _literal(namespace_expr)
            if namespace is _NOT_LITERAL or not (namespace is None or isinstance(namespace, str)):
                return None
        if isinstance(source, ir.Const) and isinstance(source.value, str):
            text = source.value
            if text == DJANGO_SETTINGS_SOURCE:
                settings_module = self.django_settings_module(module)
                return None if settings_module is None else \
                    self._module_settings(settings_module, namespace)
            module_name, _, attr = text.partition(":")
            if module_name not in self.modules:
                return None
            if not attr:
                return self._module_settings(module_name, namespace)
            symbol = self.resolver.lookup(module_name, attr)
            return self._object_settings(symbol, namespace)
        symbol = self.resolver.resolve(source, module)
        return self._object_settings(symbol, namespace)

    def _object_settings(self, symbol, namespace) -> Optional[List[Tuple[str, Setting]]]:
        if isinstance(symbol, ModuleSym):
            return self._module_settings(symbol.name, namespace)
        if isinstance(symbol, ClassSym):
            facts = self.modules[symbol.module].classes.get(symbol.qualname)
            if facts is None or facts.bases:
                return None  # inherited attributes are not followed
            found = []
            for key, value in facts.attributes.items():
                name = _setting_name(key, namespace)
                if name is not None:
                    found.append((name, self._setting(value, symbol.module)))
            return found
        return None

    def _module_settings(self, module: str, namespace) -> Optional[List[Tuple[str, Setting]]]:
        found = []
        for name in SETTINGS:
            for key in _keys(name, namespace):
                setting = self.module_value(module, key)
                if setting.state != ABSENT:
                    found.append((name, setting))
                    break
        return found

    def module_value(self, module: str, name: str, _depth: int = 0) -> Setting:
        """A module-level variable as a setting, following ``from x import *``."""
        facts = self.modules.get(module)
        if facts is None or _depth > 10:
            return UNKNOWN_SETTING
        binding = facts.bindings.get(name)
        if binding is None:
            for source in facts.star_imports:
                if source not in self.modules:
                    return UNKNOWN_SETTING  # anything may come from there
                found = self.module_value(source, name, _depth + 1)
                if found.state != ABSENT:
                    return found
            return ABSENT_SETTING
        if isinstance(binding, ValueBinding):
            return self._setting(binding.expr, module)
        return UNKNOWN_SETTING

    def django_settings_module(self, celery_module: str) -> Optional[str]:
        """The Django settings module the app reads: DJANGO_SETTINGS_MODULE as set by
        ``os.environ.setdefault`` (in the app's module first), else the only ``settings``
        module of the analysed code; None when unknown or not analysed."""
        named = []
        for module in self._module_order(celery_module):
            for root in self.modules[module].roots:
                for node in ir.walk(root.expr):
                    value = _environ_setdefault(node, "DJANGO_SETTINGS_MODULE")
                    if value is not None:
                        named.append((module, value))
        in_app_module = [value for module, value in named if module == celery_module]
        candidates = set(in_app_module or [value for _, value in named])
        if len(candidates) == 1:
            target = candidates.pop()
            return target if target in self.modules else None
        if candidates:
            return None
        # Every module's name: a settings module need not mention Celery (prefilter.py).
        names = self.modules.names() if hasattr(self.modules, "names") else list(self.modules)
        settings = [m for m in names if m == "settings" or m.endswith(".settings")]
        if len(settings) != 1:
            return None
        # Nothing names it: it is the project's settings only in Django's own layout, beside
        # the app's module (``proj/celery.py``, ``proj/settings.py``). A plugin's or a
        # reusable app's ``settings.py`` elsewhere holds its own defaults (reading Django's
        # settings), while the host project's settings are outside the tree: unknown.
        candidate = settings[0]
        if _package(candidate) != _package(celery_module):
            return None
        facts = self.modules.get(candidate)
        if facts is None or any(
                isinstance(binding, (FromImportBinding, ImportBinding))
                and binding.module.startswith("django.conf")
                for binding in facts.bindings.values()):
            return None  # ``from django.conf import settings``: not the settings module itself
        return candidate

    # ---- values ----

    def _setting(self, expr: Optional[ir.Expr], module: str) -> Setting:
        """A literal value, or unknown (the environment, a computation, a variable...)."""
        value = _literal(expr)
        if value is _NOT_LITERAL and isinstance(expr, (ir.Name, ir.Attribute)):
            symbol = self.resolver.resolve(expr, module)
            if isinstance(symbol, ValueSym):
                value, expr, module = _literal(symbol.expr), symbol.expr, symbol.module
        if value is _NOT_LITERAL:
            return UNKNOWN_SETTING
        return Setting(LITERAL, value, self._where(module, expr))

    def _where(self, module: str, expr: Optional[ir.Expr]) -> Optional[str]:
        facts = self.modules.get(module)
        if facts is None or expr is None or expr.span is None:
            return None
        return f"{facts.path}:{expr.span.line}"


_NOT_LITERAL = object()


def app_index(resolver: "Resolver") -> AppIndex:
    """The one app index of a resolver's project (``Project.apps``), for what asks the
    resolver only (``index/options.py``)."""
    found = resolver.__dict__.get("_app_index")
    if found is None:
        found = resolver.__dict__["_app_index"] = AppIndex(resolver)
    return found


def _literal(expr: Optional[ir.Expr]) -> Any:
    if isinstance(expr, ir.Const):
        return expr.value
    if isinstance(expr, ir.Sequence) and not expr.has_splat:
        items = [_literal(item) for item in expr.items]
        if all(item is not _NOT_LITERAL for item in items):
            return items
    if isinstance(expr, ir.Dict):
        # ``{"visibility_timeout": 43200}``: a value that is not literal is left out and
        # named in UNKNOWN_KEYS, so that a rule reading it says nothing.
        out: Dict[str, Any] = {}
        unknown = []
        for key, value in zip(expr.keys, expr.values):
            if not (isinstance(key, ir.Const) and isinstance(key.value, str)):
                return _NOT_LITERAL
            item = _literal(value)
            if item is _NOT_LITERAL:
                item = number(value)
            if item is None or item is _NOT_LITERAL:
                unknown.append(key.value)
            else:
                out[key.value] = item
        if unknown:
            out[UNKNOWN_KEYS] = unknown
        return out
    value = number(expr)
    return _NOT_LITERAL if value is None else value


# In a dictionary setting read by ``_literal``: the keys whose values are not literal.
UNKNOWN_KEYS = "<unknown keys>"


def number(expr: Optional[ir.Expr]) -> Optional[float]:
    """A number written as a literal or as arithmetic on literals (``2 * 60 * 60``); None
    otherwise. The expression's source text is parsed with ``ast``, never evaluated as code."""
    if isinstance(expr, ir.Const):
        value = expr.value
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if not isinstance(expr, ir.Opaque) or not expr.text or len(expr.text) > 80:
        return None
    import ast
    import operator

    operators = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
                 ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv}

    def evaluate(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in operators:
            left, right = evaluate(node.left), evaluate(node.right)
            if left is None or right is None or (right == 0 and isinstance(
                    node.op, (ast.Div, ast.FloorDiv))):
                return None
            return operators[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = evaluate(node.operand)
            return None if inner is None else -inner
        return None

    try:
        tree = ast.parse(expr.text.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None
    return evaluate(tree.body)


def _keys(name: str, namespace: Optional[str]) -> Tuple[str, ...]:
    """The keys a configuration object may use for setting ``name``."""
    if namespace:
        return (f"{namespace}_{name.upper()}",)
    return (name, SETTINGS[name])


def _setting_name(key: str, namespace: Optional[str]) -> Optional[str]:
    for name in SETTINGS:
        if key in _keys(name, namespace):
            return name
    return None


def _package(module: str) -> str:
    return module.rpartition(".")[0]


def _environ_setdefault(node: ir.Expr, variable: str) -> Optional[str]:
    """``os.environ.setdefault("VARIABLE", "value")`` -> "value"."""
    if not (isinstance(node, ir.Call) and isinstance(node.func, ir.Attribute)
            and node.func.attr == "setdefault" and len(node.positional) == 2):
        return None
    owner = ir.dotted_name(node.func.value) or ""
    if owner.split(".")[-1] != "environ":
        return None
    key, value = node.positional
    if isinstance(key, ir.Const) and key.value == variable and isinstance(value, ir.Const) \
            and isinstance(value.value, str):
        return value.value
    return None
