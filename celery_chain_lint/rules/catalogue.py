"""Every code the tool can report: the rule classes, and the two codes the engine itself
reports (CCL998 unused-noqa, CCL999 could-not-analyse). ``rules``, ``explain`` and the SARIF
output list them all."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List

from celery_chain_lint.findings import (PARSE_ERROR_CODE, PARSE_ERROR_NAME, UNUSED_NOQA_CODE,
                                         UNUSED_NOQA_NAME)


@dataclass(frozen=True)
class MetaRule:
    code: str
    name: str
    summary: str
    doc: str
    fixable: bool = False
    fix_safety: str = "safe"

    def documentation(self) -> str:
        return self.doc.strip()


UNUSED_NOQA = MetaRule(UNUSED_NOQA_CODE, UNUSED_NOQA_NAME, "a `# noqa` directive names a CCL code that "
                       "suppresses nothing on its line", '''
CCL998 unused-noqa: a ``# noqa`` directive names a CCL code that suppresses nothing.

Off unless selected: ``--show-unused-noqa``, ``extend-select = ["CCL998"]``, or a selection
that includes it (``ALL``, ``CCL``), as ruff's RUF100.

## What it does
Reports each ``CCL`` code written in a ``# noqa: ...`` comment that suppressed no finding on
its line: the finding is gone (fixed, or the code changed), the code is not enabled, or it is
not a code of this tool. Codes of other tools in the same comment (``# noqa: E501, CCL001``)
and blanket ``# noqa`` comments are left alone: flake8 or ruff may need them.

## Why is this bad?
A stale suppression hides the next real finding on that line, and tells readers a problem is
there when there is none.

## Example
```python
chain(add.s(2, 2), log_done.si("completed")).delay()  # noqa: CCL001
```
(the ``.si()`` already fixed it).

## How to fix
Delete the code, or the whole comment when nothing is left. ``--fix`` does it.
''', fixable=True)

COULD_NOT_ANALYSE = MetaRule(PARSE_ERROR_CODE, PARSE_ERROR_NAME, "a file could not be read or "
                             "parsed, so nothing in it was checked", '''
CCL999 could-not-analyse: a file could not be read or parsed.

## What it does
Reports a file the analyser could not read, decode or parse, at the position of the problem:
- a syntax error (located, with CPython's message when CPython also rejects the file; syntax
  only valid in a newer Python than the one running is analysed, not reported);
- bytes that do not decode (at the first bad byte), an unknown or non-ASCII-compatible coding
  declaration, a UTF-8 byte-order mark with another declared encoding, a UTF-16 or UTF-32 file,
  NUL bytes (a binary file named ``.py``);
- nesting Python itself refuses (more than 200 levels of brackets, more than 100 of
  indentation), an expression nested more than 1,500 levels deep, a file of more than 200,000
  tokens or 64 MB: the analysis would exhaust the stack or the memory;
- a file that cannot be read (permission denied, deleted while the run was in progress).
The other files are analysed as usual. Files the pre-filter leaves out (no Celery in them) are
not parsed, so their syntax errors are not reported; their encoding problems are.

## Why is this bad?
Nothing in that file was checked, and tasks defined in it are unknown to every other module:
findings elsewhere may be missing.

## Example
```python
def broken(:
```

## How to fix
Fix the syntax error or the encoding declaration; exclude the file (``extend-exclude``) if it is
not Python meant to be imported. ``# noqa`` cannot suppress this code; ``ignore`` and
``per-file-ignores`` can.
''')

META_RULES = [UNUSED_NOQA, COULD_NOT_ANALYSE]


def all_rules() -> List:
    from celery_chain_lint.rules import ALL_RULES

    return list(ALL_RULES) + META_RULES


FIX_COLUMN = {"safe": "yes", "unsafe": "unsafe", "sometimes unsafe": "sometimes unsafe"}


def markdown_table() -> str:
    """The README's rules table (``rules --format markdown``; tests/test_readme.py requires
    the README to hold exactly this)."""
    rows = ["| code | name | --fix | what it flags |", "|---|---|---|---|"]
    for rule in all_rules():
        fix = FIX_COLUMN[rule.fix_safety] if rule.fixable else ""
        summary = rule.summary.replace("|", "\\|")
        rows.append(f"| {rule.code} | {rule.name} | {fix} | {summary} |")
    return "\n".join(rows) + "\n"


def by_code(code: str):
    for rule in all_rules():
        if rule.code == code:
            return rule
    return None


def explanation(rule) -> str:
    """What ``explain`` prints for ``rule``: its documentation, then its options."""
    import json

    text = rule.documentation()
    options = getattr(rule, "options", None) or {}
    if options:
        text += (f"\n\n## Options\nSet in `[tool.celery-chain-lint.{rule.name}]`; "
                 "a value replaces the default.\n")
        for name, default in options.items():
            text += f"\n- `{name}` (default: `{json.dumps(default)}`)"
    return text
