"""Celery settings read from a Flask app's configuration: ``celery.conf.update(app.config)``.

Flask's recipe configures Celery from the Flask app's ``config`` mapping, at module level or in
the function that creates the Celery app (``make_celery(app)``, called once with the Flask
app). That mapping is known only when the analysed code says all that is written to it, in
literals: the Flask app is made at module level (``app = Flask(__name__)``) and its module
only writes its configuration there with ``app.config.update(...)``,
``app.config.from_mapping(...)`` or ``app.config["KEY"] = ...``. Anything else makes every
setting unknown (nothing is said): a configuration file or object (``from_pyfile``,
``from_object``, ``from_envvar``, ``from_prefixed_env``...), a write inside a function, the
app handed to a function of the project (which may configure it), or imported by another
analysed module. A value that is not a literal makes that setting unknown. The uses of the
Flask app's name are read in the facts pass, from the whole module (``ModuleFacts.
config_uses``, facts/whole_file.py); which functions it is handed to is decided here.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.model import (ConfigUses, FromImportBinding, ImportBinding,
                                          ValueBinding)
from celery_chain_lint.index.symbols import External, FunctionSym

if TYPE_CHECKING:
    from celery_chain_lint.index.apps import AppIndex

FLASK_CLASSES = frozenset({"flask.Flask", "flask.app.Flask"})
NOT_LITERAL = object()  # a value written that is not a literal: the setting is unknown


def flask_config(index: "AppIndex", owner: ir.Expr, module: str,
                 scope: str) -> Optional[List[Tuple[str, object, str]]]:
    """What ``<owner>.config`` holds when Celery reads it in ``module`` (in the function
    ``scope``, or at module level): (key, literal value or ``NOT_LITERAL``, where it was
    written) for every key written; None when the configuration is not known."""
    name, factory = _flask_app_name(index, owner, module, scope)
    facts = index.modules.get(module)
    if name is None or facts is None or not facts.path:
        return None
    binding = facts.bindings.get(name)
    if not (isinstance(binding, ValueBinding) and isinstance(binding.expr, ir.Call)):
        return None
    made = index.resolver.resolve(binding.expr.func, module)
    if not (isinstance(made, External) and made.qualname in FLASK_CLASSES):
        return None
    if _imported_elsewhere(index, module, name):
        return None
    uses = facts.config_uses.get(name)
    if uses is None or not _handed_to_known(index, uses, module, factory):
        return None
    return [(key, value if literal else NOT_LITERAL, f"{facts.path}:{line}")
            for key, literal, value, line in uses.written]


def _flask_app_name(index: "AppIndex", owner: ir.Expr, module: str,
                    scope: str) -> Tuple[Optional[str], Optional[str]]:
    """(the module-level name of the Flask app ``owner`` stands for, the factory function
    whose parameter it is, if it is one)."""
    if isinstance(owner, ir.Name) and not scope:
        return owner.id, None
    if not (isinstance(owner, ir.Opaque) and owner.kind == "local" and scope
            and "." not in scope):
        return None, None
    facts = index.modules[module]
    function = facts.functions.get(scope)
    if function is None:
        return None, None
    positions = [p.name for p in function.params.items]
    if owner.text not in positions:
        return None, None
    position = positions.index(owner.text)
    calls = []  # ``celery = make_celery(app)`` at module level: the factory's one call
    for binding in facts.bindings.values():
        if isinstance(binding, ValueBinding) and isinstance(binding.expr, ir.Call) \
                and index.resolver.resolve(binding.expr.func, module) \
                == FunctionSym(module, scope):
            calls.append(binding.expr)
    if len(calls) != 1 or calls[0].has_splat:
        return None, None
    argument = calls[0].keyword(owner.text)
    if argument is None and position < len(calls[0].positional):
        argument = calls[0].positional[position]
    if not isinstance(argument, ir.Name):
        return None, None
    return argument.id, scope


def _imported_elsewhere(index: "AppIndex", module: str, name: str) -> bool:
    """Whether another analysed module imports the Flask app or its module (and may
    configure it there)."""
    parent, _, last = module.rpartition(".")
    for other in index.modules.values():
        if other.module == module:
            continue
        for binding in other.bindings.values():
            if isinstance(binding, FromImportBinding) and (
                    binding.module == module or (binding.module, binding.name) == (parent, last)):
                return True
            if isinstance(binding, ImportBinding) and (
                    binding.module == module or module.startswith(binding.module + ".")):
                return True
        if module in other.star_imports:
            return True
    return False


def _handed_to_known(index: "AppIndex", uses: ConfigUses, module: str,
                     factory: Optional[str]) -> bool:
    """Whether every function the Flask app is handed to is the Celery factory or a library's
    (``CORS(app)``): a function of the project may configure it."""
    for dotted in uses.passed_to:
        callee = _callee(index, dotted, module)
        if not (callee == FunctionSym(module, factory or "") or isinstance(callee, External)):
            return False
    return True


def _callee(index: "AppIndex", dotted: Optional[Tuple[str, ...]], module: str):
    if dotted is None:
        return None
    symbol = index.resolver.lookup(module, dotted[0])
    for part in dotted[1:]:
        symbol = index.resolver.member(symbol, part)
    return symbol
