"""Everything a ``check`` run is configured with: defaults here, then ``pyproject.toml``
(``[tool.celery-chain-lint]``), then command-line flags, in that order of precedence."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from celery_chain_lint.discovery import DEFAULT_EXCLUDES


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
    # Per-rule options, keyed by rule name (e.g. "missing-retry": {"network-modules": [...]}).
    rule_options: Dict[str, dict] = field(default_factory=dict)
    cache_dir: Optional[str] = None
    use_cache: bool = True
    config_path: Optional[str] = None  # the pyproject.toml these came from, for messages

    def rules(self):
        """The selected rule classes, as ruff selects: prefixes, ALL, then ignores."""
        from celery_chain_lint.rules import ALL_RULES

        select = self.select + self.extend_select
        chosen = [r for r in ALL_RULES
                  if not self.select and not self.extend_select
                  or any(p == "ALL" or r.code.startswith(p) for p in select)]
        return [r for r in chosen
                if not any(p == "ALL" or r.code.startswith(p) for p in self.ignore)]

    def unknown_codes(self, codes: Sequence[str]) -> List[str]:
        from celery_chain_lint.rules import ALL_RULES

        known = [rule.code for rule in ALL_RULES] + ["CCL999"]
        return [c for c in codes if c != "ALL" and not any(k.startswith(c) for k in known)]
