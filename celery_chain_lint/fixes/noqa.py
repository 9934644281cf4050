"""``# noqa`` suppression, as flake8 and ruff read it, and CCL998 unused-noqa.

- ``# noqa`` on a line suppresses every finding reported on it; ``# noqa: CCL001, CCL003``
  only those codes (or code prefixes, as flake8: ``# noqa: CCL00``). The directive may stand
  anywhere in a comment (``# type: ignore  # noqa: CCL001``) and may name other tools' codes.
- Comments are read with ``tokenize``: ``# noqa`` inside a string is not a directive.
- A finding is suppressed by the directive on the line it starts on; when that line is part of
  a multi-line string or a backslash continuation, by the directive on the last line of it (where
  the comment can be written), as ruff.
- CCL998 (unused-noqa, off unless selected, ``--show-unused-noqa``) reports ``CCL`` codes in a
  directive that suppress nothing on their line. Codes of other tools and blanket ``# noqa``
  comments are not reported: they may be there for flake8 or ruff.
"""
from __future__ import annotations

import io
import os
import re
import token
import tokenize
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

from celery_chain_lint.facts.ir import Span
from celery_chain_lint.findings import (ENGINE_CODES, PARSE_ERROR_CODE, UNUSED_NOQA_CODE, Edit,
                                         Finding, Fix)

if TYPE_CHECKING:
    from celery_chain_lint.load import SourceFile
    from celery_chain_lint.config.settings import Settings

UNUSED_NOQA_NAME = "unused-noqa"
NOT_SUPPRESSIBLE = frozenset(ENGINE_CODES)

# flake8's NOQA_INLINE_REGEX, searched inside each comment token.
NOQA = re.compile(r"#\s*noqa(?::[\s]?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?",
                  re.IGNORECASE)
CODE = re.compile(r"[A-Z]+[0-9]+", re.IGNORECASE)
# A line that may hold a directive naming one of our codes: what CCL998 reads in a file with
# no finding. Files full of other tools' ``# noqa`` (most of a real application) are not
# tokenized for it.
MAY_NAME_OURS = re.compile(r"noqa[^\n]*ccl", re.IGNORECASE)
# MAY_NAME_OURS over a file's lowercased bytes (bytes.lower() is fast; ``re.IGNORECASE`` is not).
MAY_NAME_OURS_BYTES = re.compile(rb"noqa[^\n]*ccl")


@dataclass
class Directive:
    line: int
    start: int  # 0-based code-point offsets of the ``# noqa...`` text in its line
    end: int
    codes: Optional[Tuple[str, ...]]  # None: blanket ``# noqa``
    comment_start: int  # where the comment token starts (the ``#``)
    comment_end: int
    used: Set[str] = field(default_factory=set)

    def matches(self, code: str) -> Optional[str]:
        """The directive code that suppresses ``code`` ("" for a blanket directive)."""
        if self.codes is None:
            return ""
        for written in self.codes:
            if code.startswith(written):
                return written
        return None


@dataclass
class NoqaFile:
    directives: Dict[int, Directive] = field(default_factory=dict)
    # A line inside a multi-line string or continuation -> the line its directive is written on.
    line_map: Dict[int, int] = field(default_factory=dict)

    def noqa_line(self, line: int) -> int:
        return self.line_map.get(line, line)

    def directive_for(self, line: int) -> Optional[Directive]:
        return self.directives.get(self.noqa_line(line))


def scan(text: str) -> NoqaFile:
    """The directives of a file and where each line's directive is written."""
    result = NoqaFile()
    ranges: List[Tuple[int, int]] = []
    previous = None
    fstring_starts: List[int] = []
    fstring_start = getattr(token, "FSTRING_START", None)
    fstring_end = getattr(token, "FSTRING_END", None)
    try:
        # newline=None: lines end at \r, \n and \r\n, as Python counts them.
        for tok in tokenize.generate_tokens(io.StringIO(text, newline=None).readline):
            kind = tok.type
            if kind == tokenize.COMMENT:
                _add_directive(result, tok)
            elif kind == tokenize.STRING and tok.start[0] != tok.end[0]:
                ranges.append((tok.start[0], tok.end[0]))
            elif fstring_start is not None and kind == fstring_start:
                fstring_starts.append(tok.start[0])
            elif fstring_end is not None and kind == fstring_end and fstring_starts:
                start = fstring_starts.pop()
                if start != tok.end[0]:
                    ranges.append((start, tok.end[0]))
            if (previous is not None and tok.start[0] > previous.end[0]
                    and previous.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.COMMENT,
                                              tokenize.INDENT, tokenize.DEDENT)
                    and kind != tokenize.ENDMARKER):
                ranges.append((previous.end[0], tok.start[0]))  # backslash continuation
            previous = tok
    except (tokenize.TokenError, SyntaxError):
        pass  # keep what was read before the error
    for start, end in _merge(ranges):
        for line in range(start, end):
            result.line_map[line] = end
    return result


def _add_directive(result: NoqaFile, tok: tokenize.TokenInfo) -> None:
    match = NOQA.search(tok.string)
    if match is None:
        return
    codes = None
    if match.group("codes"):
        codes = tuple(code.upper() for code in CODE.findall(match.group("codes")))
    column = tok.start[1]
    result.directives[tok.start[0]] = Directive(
        tok.start[0], column + match.start(), column + match.end(), codes,
        column, tok.end[1])


def _merge(ranges: Iterable[Tuple[int, int]]) -> List[Tuple[int, int]]:
    merged: List[List[int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def read_text(path: str, content: Optional[bytes] = None) -> Optional[str]:
    content = read_bytes(path, content)
    return None if content is None else _decoded(content)


def read_bytes(path: str, content: Optional[bytes] = None) -> Optional[bytes]:
    """``content``, else the file's bytes; None when it cannot be read or is too large."""
    if content is not None:
        return content
    from celery_chain_lint.load import MAX_FILE_BYTES

    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size > MAX_FILE_BYTES:
                return None  # not analysed either (CCL999): memory stays bounded
            return handle.read()
    except OSError:
        return None


def _decoded(content: bytes) -> Optional[str]:
    from celery_chain_lint.load import SourceError, decode

    try:
        return decode(content).text
    except SourceError:
        return None


def _may_need_reading(data: bytes, has_findings: bool) -> bool:
    """Whether ``suppress`` must decode and read ``data``: it may hold a directive for one of
    the file's findings, or one CCL998 reads (most files hold neither: they need not be
    decoded). Decided from the bytes when Python reads them as UTF-8 (no coding declaration in
    the first two lines), where it is exact: an ASCII letter is one byte, and no other
    character lowercases to one of "noqa" nor matches "noqa...ccl" case-insensitively. A file
    that is not valid UTF-8 is skipped either way (it cannot be decoded)."""
    first = data.find(b"\n")
    second = data.find(b"\n", first + 1) if first != -1 else -1
    if b"coding" in (data if second == -1 else data[:second]):
        return True
    lowered = data.lower()
    if b"noqa" not in lowered:
        return False
    return has_findings or MAY_NAME_OURS_BYTES.search(lowered) is not None


def suppress(findings: List[Finding], sources: Sequence["SourceFile"],
             settings: "Settings") -> List[Finding]:
    """The findings left after ``ignore`` (for CCL999), ``per-file-ignores`` and ``# noqa``,
    with CCL998 findings added when that code is enabled."""
    from celery_chain_lint.load import PerFileIgnores

    per_file = PerFileIgnores(settings.per_file_ignores, settings.project_root)
    findings = [f for f in findings
                if (f.code != PARSE_ERROR_CODE or settings.enabled(PARSE_ERROR_CODE))
                and not per_file.ignored(f.path, f.code)]
    report_unused = settings.enabled(UNUSED_NOQA_CODE) and not settings.ignore_noqa
    if settings.ignore_noqa:
        return findings
    by_path: Dict[str, List[Finding]] = {}
    for finding in findings:
        by_path.setdefault(finding.path, []).append(finding)
    contents = {source.path: source.content for source in sources}
    paths = list(contents) if report_unused else list(by_path)
    scanned = set(paths)
    kept: List[Finding] = [f for f in findings if f.path not in scanned]
    enabled_codes = set(settings.rule_codes())
    for path in paths:
        here = by_path.get(path, [])
        data = read_bytes(path, contents.get(path))
        text = _decoded(data) if data is not None and _may_need_reading(data, bool(here)) \
            else None
        if text is None or "noqa" not in text.lower() or not (
                here or MAY_NAME_OURS.search(text)):
            kept.extend(here)
            continue
        noqa = scan(text)
        for finding in here:
            directive = None if finding.code in NOT_SUPPRESSIBLE \
                else noqa.directive_for(finding.span.line)
            written = directive.matches(finding.code) if directive is not None else None
            if written is None:
                kept.append(finding)
            else:
                directive.used.add(written)
        if report_unused and not per_file.ignored(path, UNUSED_NOQA_CODE):
            kept.extend(_unused(path, text, noqa, enabled_codes))
    return sorted(kept, key=Finding.sort_key)


def _unused(path: str, text: str, noqa: NoqaFile, enabled_codes: Set[str]) -> Iterator[Finding]:
    from celery_chain_lint.rules import ALL_RULES

    known = {rule.code for rule in ALL_RULES} | NOT_SUPPRESSIBLE
    from celery_chain_lint.load import split_lines

    lines = split_lines(text)  # as Python counts lines
    for directive in noqa.directives.values():
        if directive.codes is None:
            continue
        ours = [c for c in directive.codes if c.startswith("CCL")]
        unused = [c for c in ours if c not in directive.used]
        if not unused:
            continue
        unknown = [c for c in unused if not any(k.startswith(c) for k in known)]
        disabled = [c for c in unused if c not in unknown
                    and not any(k.startswith(c) for k in enabled_codes)]
        plain = [c for c in unused if c not in unknown and c not in disabled]
        parts = [f"{label}: {', '.join(codes)}" for label, codes in
                 (("unused", plain), ("non-enabled", disabled), ("unknown", unknown)) if codes]
        line = lines[directive.line - 1] if directive.line <= len(lines) else ""
        yield Finding(UNUSED_NOQA_CODE, UNUSED_NOQA_NAME, path,
                      Span(directive.line, directive.start + 1, directive.line, directive.end + 1),
                      f"unused `noqa` directive ({'; '.join(parts)})",
                      _removal_fix(directive, line, set(unused)))


def _removal_fix(directive: Directive, line: str, unused: Set[str]) -> Fix:
    remaining = [c for c in directive.codes if c not in unused]
    if remaining:
        replacement = f"# noqa: {', '.join(remaining)}"
        span = Span(directive.line, directive.start + 1, directive.line, directive.end + 1)
        return Fix("Remove the unused codes", (Edit(span, replacement),))
    start, end = directive.start, directive.end
    before = line[directive.comment_start:start].strip()
    after = line[end:directive.comment_end].strip()
    if after:  # ``# noqa: CCL001 because ...``: keep the explanation as a comment
        span = Span(directive.line, start + 1, directive.line, end + 1)
        return Fix("Remove the unused `noqa` directive", (Edit(span, "#"),))
    if before in ("", "#"):
        start = directive.comment_start  # the comment is only the directive: remove it all
    while start > 0 and line[start - 1] in " \t":
        start -= 1
    span = Span(directive.line, start + 1, directive.line, end + 1)
    return Fix("Remove the unused `noqa` directive", (Edit(span, ""),))


def add_noqa_edits(findings: Sequence[Finding], text: str) -> List[Edit]:
    """Edits writing ``# noqa: CODE`` for ``findings`` (all in one file whose text is
    ``text``): appended at the end of each line, or merged into a directive already there."""
    from celery_chain_lint.load import split_lines

    noqa = scan(text)
    lines = split_lines(text, keepends=True)  # as Python counts lines
    wanted: Dict[int, List[str]] = {}
    for finding in findings:
        if finding.code in NOT_SUPPRESSIBLE:
            continue
        line = noqa.noqa_line(finding.span.line)
        directive = noqa.directives.get(line)
        if directive is not None and directive.matches(finding.code) is not None:
            continue
        codes = wanted.setdefault(line, [])
        if finding.code not in codes:
            codes.append(finding.code)
    edits = []
    for line_number, codes in sorted(wanted.items()):
        if line_number > len(lines):
            continue
        line = lines[line_number - 1]
        body = line.rstrip("\r\n")
        directive = noqa.directives.get(line_number)
        if directive is not None:
            merged = list(directive.codes or ()) + sorted(codes)
            span = Span(line_number, directive.start + 1, line_number, directive.end + 1)
            edits.append(Edit(span, f"# noqa: {', '.join(merged)}"))
        else:
            column = len(body) + 1
            stripped = body.rstrip()
            padding = "  " if stripped else ""
            span = Span(line_number, len(stripped) + 1, line_number, column)
            edits.append(Edit(span, f"{padding}# noqa: {', '.join(sorted(codes))}"))
    return edits
