"""``path:line:col: CODE message`` per finding, then a summary, as flake8 and ruff print.

``--show-source`` adds the source line with a caret under the reported code; colour only when
the caller says so (a terminal, ``NO_COLOR`` unset).
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional

from celery_chain_lint.findings import Finding
from celery_chain_lint.reporters.printable import one_line, readable

BOLD, RED, CYAN, BLUE, RESET = "\033[1m", "\033[31m", "\033[36m", "\033[34m", "\033[0m"


def render(findings: List[Finding], files: int, options=None) -> str:
    from celery_chain_lint.reporters.options import RenderOptions

    options = options or RenderOptions()
    paint = _painter(options.color)
    lines = []
    source = _SourceLines(options.overrides)
    for finding in findings:
        fixable = _fixable(finding, options)
        lines.append(f"{paint(one_line(finding.path), BOLD)}{paint(':', CYAN)}{finding.span.line}"
                     f"{paint(':', CYAN)}{finding.span.column}{paint(':', CYAN)} "
                     f"{paint(finding.code, BOLD + RED)}{' [*]' if fixable else ''} "
                     f"{readable(finding.message)}")
        if options.show_source:
            lines.extend(_snippet(finding, source.line(finding.path, finding.span.line), paint))
    if not options.quiet:
        lines.extend(_summary(findings, files, options))
    return "\n".join(lines) + "\n" if lines else ""


def all_passed(files: int, options) -> str:
    """The clean summary; it says when none of the files uses Celery, so that "passed" never
    stands for "saw nothing" (a wrong directory, a pre-commit run over other files)."""
    files_text = f"{files} file{'s' if files != 1 else ''}"
    if options.no_celery and files:
        files_text += "; none uses Celery" if files != 1 else ", which does not use Celery"
    return f"All checks passed ({files_text})."


def _fixable(finding: Finding, options) -> bool:
    return finding.fix is not None and (options.unsafe_fixes or finding.fix.applicability == "safe")


def _summary(findings: List[Finding], files: int, options) -> List[str]:
    files_text = f"{files} file{'s' if files != 1 else ''}"
    if not findings:
        if options.fixed:
            return [f"Fixed {options.fixed} finding{'s' if options.fixed != 1 else ''}; "
                    f"all checks passed ({files_text})."]
        return [all_passed(files, options)]
    noun = "finding" if len(findings) == 1 else "findings"
    summary = f"Found {len(findings)} {noun} in {files_text}."
    if options.fixed:
        summary = (f"Found {len(findings) + options.fixed} findings in {files_text} "
                   f"({options.fixed} fixed, {len(findings)} remaining).")
    fixable = sum(1 for f in findings if _fixable(f, options))
    hidden = sum(1 for f in findings if f.fix is not None and not _fixable(f, options))
    result = [summary]
    if fixable and not options.fix_mode:
        result.append(f"[*] {fixable} fixable with --fix.")
    if hidden:
        result.append(f"{hidden} more fixable with --fix --unsafe-fixes.")
    return result


def _snippet(finding: Finding, line: Optional[str], paint) -> List[str]:
    if line is None:
        return []
    span = finding.span
    gutter = len(str(span.line))
    prefix = line[:span.column - 1]
    end = span.end_column - 1 if span.end_line == span.line else len(line.rstrip())
    marked = line[span.column - 1:max(end, span.column)]
    indent = len(prefix.expandtabs(4))
    width = max(1, len(marked.expandtabs(4)))
    bar = paint("|", BLUE)
    return [f"{' ' * gutter} {bar}",
            f"{paint(str(span.line), BLUE)} {bar} {line.expandtabs(4).rstrip()}",
            f"{' ' * gutter} {bar} {' ' * indent}{paint('^' * width + ' ' + finding.code, RED)}",
            f"{' ' * gutter} {bar}"]


class _SourceLines:
    def __init__(self, overrides: Dict[str, bytes]):
        self.overrides = {os.path.realpath(path): data for path, data in overrides.items()}
        self.cache: Dict[str, Optional[List[str]]] = {}

    def line(self, path: str, number: int) -> Optional[str]:
        if path not in self.cache:
            self.cache[path] = self._load(path)
        lines = self.cache[path]
        if lines is None or not 1 <= number <= len(lines):
            return None
        return lines[number - 1]

    def _load(self, path: str) -> Optional[List[str]]:
        from celery_chain_lint.fixes.noqa import read_text

        text = read_text(path, self.overrides.get(os.path.realpath(path)))
        from celery_chain_lint.load import split_lines

        return None if text is None else split_lines(text)


def _painter(color: bool):
    if not color:
        return lambda text, style: text
    return lambda text, style: f"{style}{text}{RESET}"


def use_color(stream) -> bool:
    """Colour on a terminal only; ``NO_COLOR`` (any non-empty value) turns it off and
    ``FORCE_COLOR`` on, as https://no-color.org and most CLIs read them."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


def fixes_available(findings: List[Finding], unsafe_fixes: bool) -> str:
    """``--show-fixes`` without ``--fix``: what each fix would do, and which need
    ``--unsafe-fixes``; empty when no finding has a fix."""
    lines = []
    for finding in findings:
        if finding.fix is None:
            continue
        note = "" if finding.fix.applicability == "safe" or unsafe_fixes else \
            " (unsafe: with --unsafe-fixes)"
        lines.append(f"  {finding.path}:{finding.span.line}:{finding.span.column}: "
                     f"{finding.code} {finding.fix.message}{note}")
    return "\n".join(["Fixes available:"] + lines) + "\n" if lines else ""


def fixes_applied(changes, names: Dict[str, str]) -> str:
    """``--show-fixes`` with ``--fix``: what was fixed, per file and rule, as ruff lists it."""
    total = sum(change.fixes for change in changes)
    if not total:
        return ""
    lines = [f"Fixed {total} finding{'s' if total != 1 else ''}:"]
    for change in changes:
        lines.append(f"- {change.path}:")
        for code, count in sorted(change.codes.items()):
            lines.append(f"    {count} \u00d7 {code} ({names.get(code, '?')})")
    return "\n".join(lines) + "\n"
