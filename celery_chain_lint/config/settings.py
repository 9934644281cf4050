"""Everything a ``check`` run is configured with: defaults here, then ``pyproject.toml``
(``[tool.celery-chain-lint]``), then command-line flags, in that order of precedence."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from celery_chain_lint.findings import ENGINE_CODES, PARSE_ERROR_CODE


# As ruff's defaults: never descend into these.
DEFAULT_EXCLUDES = frozenset({
    ".bzr", ".direnv", ".eggs", ".git", ".git-rewrite", ".hg", ".ipynb_checkpoints", ".mypy_cache",
    ".nox", ".pants.d", ".pyenv", ".pytest_cache", ".pytype", ".ruff_cache", ".svn", ".tox",
    ".venv", ".vscode", "__pypackages__", "_build", "buck-out", "build", "dist", "node_modules",
    "site-packages", "venv", "__pycache__", ".celery_chain_lint_cache",
})


@dataclass
class Settings:
    select: List[str] = field(default_factory=list)  # empty: every rule
    ignore: List[str] = field(default_factory=list)
    extend_select: List[str] = field(default_factory=list)
    per_file_ignores: Dict[str, List[str]] = field(default_factory=dict)
    exclude: List[str] = field(default_factory=lambda: sorted(DEFAULT_EXCLUDES))
    extend_exclude: List[str] = field(default_factory=list)
    src: List[str] = field(default_factory=list)  # source roots for module names
    respect_gitignore: bool = True
    # Apply excludes to paths given explicitly too (pre-commit passes file names), as ruff.
    force_exclude: bool = False
    # Relative exclude and per-file-ignores globs are anchored here: the directory of the
    # configuration file, else the working directory (None).
    project_root: Optional[str] = None
    ignore_noqa: bool = False  # report findings even on lines with a matching ``# noqa``
    # Text to analyse instead of files on disk (absolute path -> bytes): standard input,
    # and the rounds of --fix/--diff before anything is written.
    overrides: Dict[str, bytes] = field(default_factory=dict)
    # Per-rule options, keyed by rule name (e.g. "missing-retry": {"network-modules": [...]}).
    rule_options: Dict[str, dict] = field(default_factory=dict)
    cache_dir: Optional[str] = None
    use_cache: bool = True
    config_path: Optional[str] = None  # the pyproject.toml these came from, for messages
    # The command-line flags layered over the configuration file (cli.py), when each file
    # takes its nearest configuration; None when one was named (--config) or --isolated.
    flags: Optional[Dict[str, Any]] = None

    def rule_codes(self) -> List[str]:
        """The selected rules' codes, as ruff selects: prefixes, ALL, then ignores (known
        without importing the rules)."""
        from celery_chain_lint.rules import RULE_CODES

        def matches(code, patterns):
            return any(p == "ALL" or code.startswith(p) for p in patterns)

        # No select: every rule; extend-select adds to it, ignore removes (as ruff).
        chosen = [c for c in RULE_CODES
                  if not self.select or matches(c, self.select) or matches(c, self.extend_select)]
        return [c for c in chosen if not matches(c, self.ignore)]

    def rules(self):
        """The selected rule classes."""
        from celery_chain_lint.rules import RULES_BY_CODE

        return [RULES_BY_CODE[code] for code in self.rule_codes()]

    def unknown_codes(self, codes: Sequence[str]) -> List[str]:
        from celery_chain_lint.rules import RULE_CODES

        known = list(RULE_CODES) + list(ENGINE_CODES)
        return [c for c in codes if c != "ALL" and not any(k.startswith(c) for k in known)]

    def enabled(self, code: str) -> bool:
        """Whether a code outside the rule classes is on: CCL998 (unused-noqa) only when
        selected explicitly (a prefix or ALL counts, as ruff's RUF100), CCL999
        (could-not-analyse) unless ignored."""
        def matches(patterns):
            return any(p == "ALL" or code.startswith(p) for p in patterns)

        if matches(self.ignore):
            return False
        if code == PARSE_ERROR_CODE:
            return True
        return matches(self.select + self.extend_select)
