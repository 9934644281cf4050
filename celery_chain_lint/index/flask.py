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
analysed module. A value that is not a literal makes that setting unknown.
"""
from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.model import FromImportBinding, ImportBinding, ValueBinding
from celery_chain_lint.index.factories import module_tree
from celery_chain_lint.index.symbols import External, FunctionSym

if TYPE_CHECKING:
    from celery_chain_lint.index.apps import AppIndex

FLASK_CLASSES = frozenset({"flask.Flask", "flask.app.Flask"})
# Methods writing a literal configuration.
WRITES = frozenset({"update", "from_mapping"})


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
    tree = module_tree(index.resolver, module)
    if tree is None:
        return None
    written = _written(index, tree, module, name, factory)
    if written is None:
        return None
    return [(key, value, f"{facts.path}:{line}") for key, (value, line) in written.items()]


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


NOT_LITERAL = object()  # a value written that is not a literal: the setting is unknown


def _literal(node: ast.AST):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return NOT_LITERAL


def _written(index: "AppIndex", tree: ast.Module, module: str, name: str,
             factory: Optional[str]) -> Optional[Dict[str, Tuple[object, int]]]:
    """Key -> (value, or NOT_LITERAL; line) of every write to ``<name>.config`` in the
    module, when each use of ``name`` is one this module can follow; else None."""
    parents: Dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    top = {id(statement) for statement in tree.body}
    written: Dict[str, Tuple[object, int]] = {}
    assigned = 0
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Name) and node.id == name):
            continue
        parent = parents.get(id(node))
        if isinstance(node.ctx, ast.Store):
            assigned += 1  # ``app = Flask(__name__)``, once, at module level
            if assigned > 1 or not (isinstance(parent, ast.Assign) and id(parent) in top):
                return None
            continue
        if isinstance(parent, ast.Attribute) and parent.value is node:
            if parent.attr != "config":
                continue  # ``app.route``, ``app.name``, ``app.import_name``...
            if not _config_use(parents, parent, top, written):
                return None
            continue
        if isinstance(parent, ast.Call) and node in parent.args:
            callee = _callee(index, parent.func, module)
            if callee == FunctionSym(module, factory or "") or isinstance(callee, External):
                continue  # the Celery factory, or a library (``CORS(app)``)
        return None
    return written


def _callee(index: "AppIndex", func: ast.AST, module: str):
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return None
    symbol = index.resolver.lookup(module, func.id)
    for part in reversed(parts):
        symbol = index.resolver.member(symbol, part)
    return symbol


def _config_use(parents: Dict[int, ast.AST], config: ast.Attribute, top,
                written: Dict[str, Tuple[object, int]]) -> bool:
    """Whether ``<app>.config`` is used in a way followed (recording what it writes)."""
    user = parents.get(id(config))
    if isinstance(user, ast.Subscript) and user.value is config:
        if isinstance(user.ctx, ast.Load):
            return True  # ``app.config["CELERY_BROKER_URL"]``: a read
        statement = parents.get(id(user))
        key = _literal(user.slice)
        if not (isinstance(statement, ast.Assign) and id(statement) in top
                and len(statement.targets) == 1 and isinstance(key, str)):
            return False
        written[key] = (_literal(statement.value), statement.lineno)
        return True
    if isinstance(user, ast.Attribute) and user.value is config and user.attr in WRITES:
        call = parents.get(id(user))
        statement = parents.get(id(call))
        if not (isinstance(call, ast.Call) and call.func is user
                and isinstance(statement, ast.Expr) and id(statement) in top):
            return False
        for argument in call.args:
            mapping = _literal(argument)
            if not isinstance(mapping, dict) or not all(isinstance(k, str) for k in mapping):
                return False
            for key, value in mapping.items():
                written[key] = (value, call.lineno)
        for keyword in call.keywords:
            if keyword.arg is None:
                return False
            written[keyword.arg] = (_literal(keyword.value), call.lineno)
        return True
    if isinstance(user, ast.Call) and config in user.args:
        # ``celery.conf.update(app.config)``: Celery reading it.
        func = user.func
        return isinstance(func, ast.Attribute) and func.attr == "update" \
            and isinstance(func.value, ast.Attribute) and func.value.attr == "conf"
    return False
