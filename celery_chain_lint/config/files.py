"""Configuration files: ``[tool.celery-chain-lint]`` in ``pyproject.toml``, or the top level of
``celery-chain-lint.toml`` / ``.celery-chain-lint.toml``.

The file is found by walking up from the analysed paths (their common directory): in each
directory ``.celery-chain-lint.toml``, then ``celery-chain-lint.toml``, then a ``pyproject.toml``
that has a ``[tool.celery-chain-lint]`` table; the first found wins. ``--config PATH`` names it
instead, ``--isolated`` ignores every file. Relative globs and ``src`` entries in the file are
relative to its directory. Unknown keys, unknown rule codes, unknown rules and values of the
wrong type are errors naming the key and the file (exit 2).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from celery_chain_lint.config.settings import Settings

SECTION = "celery-chain-lint"
STANDALONE_NAMES = (".celery-chain-lint.toml", "celery-chain-lint.toml")


class ConfigError(Exception):
    """A configuration file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Key:
    name: str
    attribute: str
    kind: str  # "codes", "strings", "bool", "string", "per-file-ignores"
    help: str
    example: str


# The configuration reference (README "Configuration" lists each of these; a test checks it).
KEYS: Tuple[Key, ...] = (
    Key("select", "select", "codes",
        "Rule codes or prefixes to enable; `ALL` enables every rule. Default: every rule "
        "except CCL998.", '["CCL001", "CCL002"]'),
    Key("extend-select", "extend_select", "codes",
        "Codes or prefixes to enable on top of `select`.", '["CCL998"]'),
    Key("ignore", "ignore", "codes", "Codes or prefixes to disable.", '["CCL003"]'),
    Key("per-file-ignores", "per_file_ignores", "per-file-ignores",
        "Glob -> codes not reported in matching files. A glob matches the file name or the path "
        "relative to the project root; a leading `!` negates it.",
        '{ "tests/*" = ["CCL006"] }'),
    Key("extend-per-file-ignores", "per_file_ignores", "per-file-ignores",
        "Entries added to `per-file-ignores`.", '{ "scripts/*" = ["ALL"] }'),
    Key("exclude", "exclude", "strings",
        "Globs of files and directories never analysed; replaces the defaults (`.git`, `.venv`, "
        "`venv`, `node_modules`, `build`, `dist`, `__pycache__`, ... as ruff).",
        '[".git", "build"]'),
    Key("extend-exclude", "extend_exclude", "strings",
        "Globs excluded on top of `exclude`.", '["migrations", "legacy/*.py"]'),
    Key("force-exclude", "force_exclude", "bool",
        "Apply the excludes to paths given on the command line too (pre-commit passes "
        "file names).", "true"),
    Key("respect-gitignore", "respect_gitignore", "bool",
        "Skip files ignored by `.gitignore` and `.git/info/exclude`. Default: true.", "false"),
    Key("src", "src", "strings",
        "Source roots: a file's module name is its path relative to the first root that "
        "contains it (else found by walking up through packages).", '["src"]'),
    Key("cache-dir", "cache_dir", "string", "Where the analysis cache is kept.",
        '".celery_chain_lint_cache"'),
)
KEYS_BY_NAME = {key.name: key for key in KEYS}


def find_config(paths: Sequence[str]) -> Optional[str]:
    """The configuration file that applies to ``paths``, found by walking up."""
    absolute = [os.path.abspath(p) for p in paths] or [os.getcwd()]
    try:
        start = os.path.commonpath(absolute)
    except ValueError:  # paths on different drives
        start = os.getcwd()
    if not os.path.isdir(start):
        start = os.path.dirname(start)
    directory = start
    while True:
        for name in STANDALONE_NAMES:
            candidate = os.path.join(directory, name)
            if os.path.isfile(candidate):
                return candidate
        candidate = os.path.join(directory, "pyproject.toml")
        if os.path.isfile(candidate) and _has_section(candidate):
            return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _has_section(pyproject: str) -> bool:
    try:
        data = _load_toml(pyproject)
    except ConfigError:
        return True  # let load() report the broken file rather than skip it silently
    return isinstance(data.get("tool"), dict) and SECTION in data["tool"]


def toml_module():
    """``tomllib`` (``tomli`` before Python 3.11), imported when a TOML file is first read: a
    tree without one never pays for it (with the ``string`` module it imports, a hundredth of
    a second)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10
        import tomli as tomllib
    return tomllib


def _load_toml(path: str) -> dict:
    tomllib = toml_module()
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the configuration file: {error.strerror}")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: invalid TOML: {error}")


def table_of(path: str) -> dict:
    """The ``celery-chain-lint`` table of a configuration file."""
    data = _load_toml(path)
    if os.path.basename(path) == "pyproject.toml":
        tool = data.get("tool", {})
        table = tool.get(SECTION, {}) if isinstance(tool, dict) else {}
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [tool.{SECTION}] must be a table")
        return table
    return data


def load(path: str, settings: Optional[Settings] = None) -> Settings:
    """``settings`` (default: the defaults) updated from the configuration file ``path``."""
    from celery_chain_lint.rules import ALL_RULES

    settings = settings or Settings()
    table = table_of(path)
    where = f"[tool.{SECTION}]" if os.path.basename(path) == "pyproject.toml" else "the top level"
    root = os.path.dirname(os.path.abspath(path))
    settings.config_path = path
    settings.project_root = root
    rules_by_name = {rule.name: rule for rule in ALL_RULES}
    rules_by_code = {rule.code: rule for rule in ALL_RULES}
    per_file: Dict[str, List[str]] = {}
    extend_per_file: Dict[str, List[str]] = {}
    for name, value in table.items():
        key = KEYS_BY_NAME.get(name)
        if key is None:
            if isinstance(value, dict) and name in rules_by_name:
                settings.rule_options[name] = _rule_options(path, rules_by_name[name], value)
                continue
            if isinstance(value, dict) and name.upper() in rules_by_code:
                rule = rules_by_code[name.upper()]
                raise ConfigError(f"{path}: unknown key '{name}' in {where}: per-rule options "
                                  f"are keyed by rule name: [tool.{SECTION}.{rule.name}]")
            hint = _suggest(name)
            raise ConfigError(f"{path}: unknown key '{name}' in {where}"
                              + (f" (did you mean '{hint}'?)" if hint else ""))
        checked = _check_value(path, settings, key, value)
        if key.name == "per-file-ignores":
            per_file = checked
        elif key.name == "extend-per-file-ignores":
            extend_per_file = checked
        elif key.name in ("src",):
            setattr(settings, key.attribute, [os.path.join(root, entry) for entry in checked])
        elif key.name == "cache-dir":
            setattr(settings, key.attribute, os.path.join(root, checked))
        else:
            setattr(settings, key.attribute, checked)
    if per_file or extend_per_file:
        settings.per_file_ignores = {**per_file, **extend_per_file}
    return settings


def _suggest(name: str) -> Optional[str]:
    import difflib

    from celery_chain_lint.rules import ALL_RULES

    names = list(KEYS_BY_NAME) + [rule.name for rule in ALL_RULES]
    close = difflib.get_close_matches(name.replace("_", "-"), names, n=1)
    return close[0] if close else None


def _check_value(path: str, settings: Settings, key: Key, value: Any) -> Any:
    def fail(expected: str):
        raise ConfigError(f"{path}: '{key.name}' must be {expected}, not {_show(value)}")

    if key.kind == "bool":
        if not isinstance(value, bool):
            fail("true or false")
        return value
    if key.kind == "string":
        if not isinstance(value, str):
            fail("a string")
        return value
    if key.kind in ("strings", "codes"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            fail("a list of strings")
        if key.kind == "codes":
            return _codes(path, settings, key.name, value)
        return list(value)
    if key.kind == "per-file-ignores":
        if not isinstance(value, dict):
            fail('a table of glob = ["CODE", ...]')
        result = {}
        for pattern, codes in value.items():
            if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
                raise ConfigError(f"{path}: '{key.name}' entry '{pattern}' must be a list of "
                                  f"rule codes, not {_show(codes)}")
            result[pattern] = _codes(path, settings, f"{key.name}.\"{pattern}\"", codes)
        return result
    raise AssertionError(key.kind)


def _codes(path: str, settings: Settings, where: str, values: List[str]) -> List[str]:
    codes = [value.strip().upper() for value in values]
    unknown = settings.unknown_codes(codes)
    if unknown:
        raise ConfigError(f"{path}: unknown rule code{'s' if len(unknown) > 1 else ''} in "
                          f"'{where}': {', '.join(unknown)}")
    return codes


def _rule_options(path: str, rule, table: dict) -> dict:
    options = getattr(rule, "options", {}) or {}
    result = {}
    for name, value in table.items():
        if name not in options:
            known = ", ".join(sorted(options)) or "none"
            raise ConfigError(f"{path}: unknown option '{name}' in [tool.{SECTION}.{rule.name}] "
                              f"({rule.code} options: {known})")
        default = options[name]
        if default is not None and not _same_type(value, default):
            raise ConfigError(f"{path}: '{rule.name}.{name}' must be {_describe(default)}, "
                              f"not {_show(value)}")
        result[name] = value
    return result


def _same_type(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        if not isinstance(value, list):
            return False
        kinds = {type(item) for item in default}
        return all(type(item) in kinds for item in value) if kinds else True
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type(default))


def _describe(default: Any) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, (list, tuple)):
        return "a list of strings" if all(isinstance(i, str) for i in default) else "a list"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, str):
        return "a string"
    if isinstance(default, dict):
        return "a table"
    return type(default).__name__


def _show(value: Any) -> str:
    text = repr(value)
    kind = {bool: "a boolean", str: "a string", int: "an integer", float: "a number",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)
    return f"{kind} ({text[:60]})"


def resolve(paths: Sequence[str], config: Optional[str] = None,
            isolated: bool = False) -> Settings:
    """The settings for analysing ``paths``: the defaults, then the configuration file."""
    settings = Settings()
    if isolated:
        return settings
    if config is not None:
        if not os.path.isfile(config):
            raise ConfigError(f"{config}: no such configuration file")
        return load(config, settings)
    found = find_config(paths)
    if found is not None:
        return load(found, settings)
    return settings


def apply_flags(settings: Settings, *, select, extend_select, ignore, per_file, extend_per_file, exclude,
                extend_exclude, respect_gitignore, force_exclude, show_unused_noqa, ignore_noqa,
                no_cache, cache_dir) -> None:
    """Command-line flags over the configuration file, layered as ruff layers them: a
    --select replaces the file's whole selection (select, extend-select and ignore)."""
    unknown = settings.unknown_codes(select + extend_select + ignore
                                     + [c for codes in per_file.values() for c in codes]
                                     + [c for codes in extend_per_file.values() for c in codes])
    if unknown:
        raise ConfigError(f"unknown rule code or prefix: {', '.join(unknown)}")
    if show_unused_noqa:
        extend_select = extend_select + ["CCL998"]
    if select:
        settings.select, settings.extend_select, settings.ignore = select, extend_select, ignore
    else:
        settings.ignore = [c for c in settings.ignore if c not in extend_select] + ignore
        settings.extend_select = settings.extend_select + extend_select
    if per_file:
        settings.per_file_ignores = per_file
    if extend_per_file:
        settings.per_file_ignores = {**settings.per_file_ignores, **extend_per_file}
    if exclude:
        settings.exclude = exclude
    settings.extend_exclude = settings.extend_exclude + extend_exclude
    if respect_gitignore is not None:
        settings.respect_gitignore = respect_gitignore
    if force_exclude is not None:
        settings.force_exclude = force_exclude
    settings.ignore_noqa = settings.ignore_noqa or ignore_noqa
    if no_cache:
        settings.use_cache = False
    if cache_dir:
        settings.cache_dir = cache_dir


def nearest_config(directory: str, memo: Dict[str, Optional[str]]) -> Optional[str]:
    """The configuration file that applies to the files of ``directory``: the nearest one
    walking up (``memo`` remembers each directory's answer)."""
    if directory in memo:
        return memo[directory]
    found = None
    for name in STANDALONE_NAMES:
        if os.path.isfile(os.path.join(directory, name)):
            found = os.path.join(directory, name)
            break
    if found is None:
        candidate = os.path.join(directory, "pyproject.toml")
        if os.path.isfile(candidate) and _has_section(candidate):
            found = candidate
    if found is None:
        parent = os.path.dirname(directory)
        found = None if parent == directory else nearest_config(parent, memo)
    memo[directory] = found
    return found


def settings_for(config: Optional[str], base: Settings) -> Settings:
    """The settings of the files under ``config`` (None: no file, the defaults): that file's,
    with the same command-line flags as ``base`` on top and what the run itself carries
    (standard input, the cache)."""
    settings = load(config, Settings()) if config is not None else Settings()
    apply_flags(settings, **base.flags)
    settings.flags = base.flags
    settings.overrides = base.overrides
    settings.use_cache = base.use_cache
    return settings
