"""``--fix``, ``--diff`` and ``--add-noqa``: apply findings' edits and write files safely.

- Fixes are applied in memory, then the whole project is analysed again with the fixed text in
  place of the files, until no applicable fix remains (at most ``MAX_ITERATIONS`` rounds, as
  ruff): a fix whose edits overlap one already taken waits for the next round.
- Every fixed text is re-parsed; one that does not parse is not written.
- Nothing is written before the rounds end. A file whose bytes on disk are no longer those that
  were analysed is reported and skipped. Writes are atomic: a temporary file in the same
  directory, fsync, then ``os.replace``; the file's mode, owner and group, encoding
  (including a UTF-8 BOM or a coding cookie) and line endings are kept; a symbolic link is
  followed and its target replaced. A file with other hard links, one whose owner or group
  this user cannot give a new file, and one in a directory this user cannot write, are
  rewritten in place instead (see ``atomic_write``). A read-only file is not written.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import stat
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from celery_chain_lint.findings import Finding, Fix
from celery_chain_lint.load import SourceError, decode, write_atomically

MAX_ITERATIONS = 10


def encode(text: str, encoding: str) -> bytes:
    return text.encode(encoding)


def newline_of(text: str) -> str:
    for index, char in enumerate(text):
        if char == "\r":
            return "\r\n" if text[index + 1:index + 2] == "\n" else "\r"
        if char == "\n":
            return "\n"
    return "\n"


class _Lines:
    def __init__(self, text: str):
        self.text = text
        self.starts = [0]
        self.lengths = []  # without the line terminator
        from celery_chain_lint.load import split_lines

        for line in split_lines(text, keepends=True):  # as Python counts lines
            self.lengths.append(len(line.rstrip("\r\n")))
            self.starts.append(self.starts[-1] + len(line))
        if not self.lengths or text.endswith(("\n", "\r")):
            self.lengths.append(0)  # the (empty) line after the last terminator

    def offset(self, line: int, column: int) -> Optional[int]:
        if line < 1 or line > len(self.lengths) or column < 1 or column > self.lengths[line - 1] + 1:
            return None
        return self.starts[line - 1] + column - 1


def apply_fixes(text: str, fixes: Sequence[Fix]) -> Tuple[str, List[Fix]]:
    """``text`` with the fixes whose edits do not overlap an earlier one; the fixes applied."""
    lines = _Lines(text)
    newline = newline_of(text)
    taken: List[Tuple[int, int, str]] = []
    applied: List[Fix] = []
    candidates = []
    for fix in fixes:
        ranges = []
        for edit in fix.edits:
            start = lines.offset(edit.span.line, edit.span.column)
            end = lines.offset(edit.span.end_line, edit.span.end_column)
            if start is None or end is None or end < start:
                ranges = None
                break
            content = edit.content.replace("\r\n", "\n").replace("\r", "\n")
            ranges.append((start, end, content.replace("\n", newline)))
        if ranges:
            candidates.append((min(r[0] for r in ranges), fix, sorted(ranges)))
    candidates.sort(key=lambda item: item[0])
    seen = set()
    for _, fix, ranges in candidates:
        if fix in seen:  # the same fix attached to two findings
            continue
        if _overlaps(ranges, ranges) or any(_overlaps([r], taken) for r in ranges):
            continue
        seen.add(fix)
        taken.extend(ranges)
        applied.append(fix)
    result = text
    for start, end, content in sorted(taken, reverse=True):
        result = result[:start] + content + result[end:]
    return result, applied


def _conflict(first, second) -> bool:
    (a, b, _), (c, d, _) = first, second
    if a == b and c == d:
        return a == c  # two insertions at one point: their order is ambiguous
    if a == b:
        return c < a < d
    if c == d:
        return a < c < b
    return a < d and c < b


def _overlaps(ranges, others) -> bool:
    for index, first in enumerate(ranges):
        for other_index, second in enumerate(others):
            if ranges is others and index == other_index:
                continue
            if _conflict(first, second):
                return True
    return False


def parses(data: bytes) -> bool:
    from celery_chain_lint.load import decode, parse_text, run_deep

    try:  # as the analysis parses: decoded as CPython would, nesting checked, on a deep stack
        run_deep(lambda raw: parse_text(decode(raw).text), data)
    except Exception:  # SourceError, and anything else on hostile input
        return False
    return True


class WriteError(Exception):
    pass


class FileChanged(Exception):
    """The file no longer holds the bytes that were analysed."""


def atomic_write(path: str, data: bytes, original: Optional[bytes] = None) -> None:
    """Replace ``path``'s content with ``data``, keeping its mode, owner, group and hard links.

    The usual way is atomic: a temporary file in the same directory, then ``os.replace``; a
    crash leaves the old text or the new, never a mix. But the renamed file is a new inode:
    the file's other hard links would keep the old text, and a file of another owner or
    group (one this user may write but not ``chown`` back) would change hands. There, and
    where the directory is not writable, the file is rewritten in place instead
    (``_rewrite_in_place``). ``original``: the bytes the fixes were computed from; a file that
    no longer holds them raises ``FileChanged`` and is left alone."""
    target = os.path.realpath(path)
    info = os.stat(target)
    if info.st_nlink > 1:
        _rewrite_in_place(target, data, original)
        return

    def keep_mode_and_owner(temporary: str) -> bool:
        os.chmod(temporary, stat.S_IMODE(info.st_mode))
        if hasattr(os, "chown"):
            try:
                os.chown(temporary, info.st_uid, info.st_gid)
            except OSError:
                pass  # _same_owner sees it
        return _same_owner(temporary, info)

    try:
        replaced = write_atomically(target, data, prefix=f".{os.path.basename(target)}.",
                                    suffix=".ccl-tmp", durable=True,
                                    prepare=keep_mode_and_owner)
    except PermissionError:  # a writable file in a directory that is not
        replaced = False
    if not replaced:
        _rewrite_in_place(target, data, original)


def _same_owner(path: str, info: os.stat_result) -> bool:
    now = os.stat(path)
    return (now.st_uid, now.st_gid) == (info.st_uid, info.st_gid)


def _rewrite_in_place(target: str, data: bytes, original: Optional[bytes]) -> None:
    """Overwrite ``target``'s bytes through one open descriptor: the inode, so its hard links,
    owner, group and extended attributes, stays. The content is compared with ``original``
    through the same descriptor just before writing; the space a longer text needs is
    reserved first (``posix_fallocate``), so a full disk refuses before a byte changes; an
    error while writing puts the old bytes back. Not atomic against a crash: a kill between
    the write and the truncation of a shorter text could leave the old tail after the new
    text (a window of two system calls)."""
    descriptor = os.open(target, os.O_RDWR)
    try:
        before = _read_all(descriptor)
        if original is not None and before != original:
            raise FileChanged(target)
        if len(data) > len(before) and hasattr(os, "posix_fallocate"):
            os.posix_fallocate(descriptor, 0, len(data))
        try:
            _overwrite(descriptor, data)
        except OSError:
            _overwrite(descriptor, before)
            raise
    finally:
        os.close(descriptor)


def _read_all(descriptor: int) -> bytes:
    chunks = []
    offset = 0
    while True:
        chunk = os.pread(descriptor, 1 << 20, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


def _overwrite(descriptor: int, data: bytes) -> None:
    written = 0
    while written < len(data):
        written += os.pwrite(descriptor, data[written:], written)
    os.ftruncate(descriptor, len(data))
    os.fsync(descriptor)


@dataclass
class FileChange:
    path: str  # as displayed
    original: bytes
    fixed: bytes
    fixes: int
    codes: Dict[str, int] = field(default_factory=dict)  # fixes applied per rule code

    def diff(self) -> str:
        before, after = decode(self.original).text, decode(self.fixed).text
        return "".join(difflib.unified_diff(before.splitlines(keepends=True),
                                            after.splitlines(keepends=True),
                                            fromfile=self.path, tofile=self.path))


@dataclass
class FixOutcome:
    report: object  # engine.Report: what remains
    changes: List[FileChange] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)  # files skipped, and why
    converged: bool = True

    @property
    def fixed(self) -> int:
        return sum(change.fixes for change in self.changes)


def applicable(finding: Finding, unsafe: bool) -> bool:
    return finding.fix is not None and (unsafe or finding.fix.applicability == "safe")


def _snapshot(paths: Sequence[str], settings) -> Dict[str, Tuple[int, int]]:
    """(mtime, size) of every file the analysis will read, taken before it reads them."""
    from celery_chain_lint.load import discover, path_filter

    try:
        sources = discover(paths, excludes=set(settings.exclude) | set(settings.extend_exclude),
                           source_roots=settings.src, path_filter=path_filter(settings),
                           force_exclude=settings.force_exclude)
    except Exception:
        return {}
    result = {}
    for source in sources:
        try:
            info = os.stat(source.path)
        except OSError:
            continue
        result[os.path.realpath(source.path)] = (info.st_mtime_ns, info.st_size)
    return result


def _read(path: str) -> Tuple[Optional[bytes], Optional[Tuple[int, int]]]:
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            return handle.read(), (info.st_mtime_ns, info.st_size)
    except OSError:
        return None, None


def fix(paths: Sequence[str], settings, unsafe: bool = False, write: bool = True) -> FixOutcome:
    """Apply the applicable fixes of ``check(paths, settings)`` until none remains; write the
    files (``write``) or only return the changes (``--diff``)."""
    from celery_chain_lint import engine

    snapshot = _snapshot(paths, settings) if write else {}
    originals: Dict[str, bytes] = {}
    current: Dict[str, bytes] = {}
    shown: Dict[str, str] = {}
    counts: Dict[str, int] = {}
    codes: Dict[str, Dict[str, int]] = {}
    problems: List[str] = []
    frozen = set()  # files not to touch again (changed during analysis, unparsable fix)
    converged = False
    report = None
    for _ in range(MAX_ITERATIONS):
        overrides = dict(settings.overrides)
        overrides.update(current)
        report = engine.check(paths, dataclasses.replace(settings, overrides=overrides))
        by_file: Dict[str, List[Finding]] = {}
        for finding in report.findings:
            if applicable(finding, unsafe):
                key = os.path.realpath(finding.path)
                if key not in frozen:
                    by_file.setdefault(key, []).append(finding)
        progress = False
        for key, findings in by_file.items():
            if key not in current:
                data = _given(settings.overrides, key)
                if data is None:
                    data, seen = _read(key)
                    if data is None:
                        problems.append(f"{findings[0].path}: cannot read the file; not fixed")
                        frozen.add(key)
                        continue
                    stale = [f for f in findings if not _analysed(report, f.path, data)]
                    if key in snapshot and seen != snapshot[key] or stale:
                        for path in sorted({f.path for f in (stale or findings)}):
                            problems.append(f"{path}: changed on disk during the analysis; "
                                            "not fixed")
                        frozen.add(key)
                        continue
                originals[key] = current[key] = data
                shown[key] = findings[0].path
            try:
                decoded = decode(current[key])
            except SourceError:
                frozen.add(key)
                continue
            text, encoding = decoded.text, decoded.write_encoding
            fixed_text, applied = apply_fixes(text, [f.fix for f in findings])
            if not applied:
                continue
            code_of = {f.fix: f.code for f in findings}
            try:
                fixed = encode(fixed_text, encoding)
            except UnicodeEncodeError:
                problems.append(f"{shown[key]}: a fix cannot be encoded as {encoding}; not fixed")
                frozen.add(key)
                continue
            if fixed == current[key]:  # the fixes change nothing: they will not converge
                frozen.add(key)
                continue
            if not parses(fixed):
                problems.append(f"{shown[key]}: the fixed file would not parse; not fixed "
                                "(please report it)")
                frozen.add(key)
                continue
            current[key] = fixed
            counts[key] = counts.get(key, 0) + len(applied)
            for fix_applied in applied:
                per_code = codes.setdefault(key, {})
                per_code[code_of[fix_applied]] = per_code.get(code_of[fix_applied], 0) + 1
            progress = True
        if not progress:
            converged = True
            break
    changes = [FileChange(shown[key], originals[key], current[key], counts[key], codes[key])
               for key in sorted(current, key=lambda k: shown[k])
               if current[key] != originals[key]]
    outcome = FixOutcome(report, changes, problems, converged)
    if not converged:
        problems.append(f"fixes did not converge after {MAX_ITERATIONS} rounds; "
                        "run again, and please report it")
    if write:
        written = []
        for change in changes:
            problem = write_if_unchanged(change.path, change.original, change.fixed)
            if problem:
                problems.append(problem)
            else:
                written.append(change)
        outcome.changes = written
        if len(written) != len(changes) or not converged:
            from celery_chain_lint.load import PathError

            try:  # what is on disk now
                outcome.report = engine.check(paths, settings)
            except PathError:  # a path given went away meanwhile: the last round stands
                pass
    elif not converged:
        outcome.report = engine.check(paths, dataclasses.replace(
            settings, overrides={**settings.overrides, **current}))
    return outcome


def _analysed(report, path: str, data: bytes) -> bool:
    """Whether ``data`` are the very bytes the findings for ``path`` were computed from (the
    file may have been rewritten with its size and mtime kept, or replaced by a link to another
    file, between the analysis and this read: its edits would land on other text)."""
    from celery_chain_lint.load import content_hash

    digest = getattr(report, "digests", {}).get(os.path.abspath(path))
    return digest is not None and content_hash(data) == digest


def _given(overrides: Dict[str, bytes], key: str) -> Optional[bytes]:
    for path, data in overrides.items():
        if os.path.realpath(path) == key:
            return data
    return None


def write_if_unchanged(path: str, original: bytes, data: bytes) -> Optional[str]:
    """Write ``data`` to ``path`` if the file still holds ``original``; else why not."""
    now, _ = _read(path)
    if now is None:
        return f"{path}: cannot read the file any more; not fixed"
    if now != original:
        return f"{path}: changed on disk since it was analysed; not fixed"
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return f"{path}: cannot read the file any more; not fixed"
    if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        return f"{path}: the file is read-only; not fixed"
    try:
        atomic_write(path, data, original)
    except FileChanged:
        return f"{path}: changed on disk since it was analysed; not fixed"
    except OSError as error:
        return f"{path}: cannot write the file ({error.strerror or error}); not fixed"
    return None


def add_noqa(paths: Sequence[str], settings) -> Tuple[int, List[str]]:
    """Write ``# noqa: CODE`` for every finding of ``check(paths, settings)``; the number of
    directives written and the files that could not be changed."""
    from celery_chain_lint import engine
    from celery_chain_lint.fixes.noqa import add_noqa_edits

    snapshot = _snapshot(paths, settings)
    report = engine.check(paths, settings)
    by_file: Dict[str, List[Finding]] = {}
    for finding in report.findings:
        by_file.setdefault(finding.path, []).append(finding)
    added, problems = 0, []
    for path, findings in by_file.items():
        data, seen = _read(path)
        key = os.path.realpath(path)
        if data is None:
            continue
        if key in snapshot and seen != snapshot[key]:
            problems.append(f"{path}: changed on disk during the analysis; no noqa added")
            continue
        try:
            decoded = decode(data)
        except SourceError:
            continue
        text, encoding = decoded.text, decoded.write_encoding
        edits = add_noqa_edits(findings, text)
        if not edits:
            continue
        fixed_text, applied = apply_fixes(text, [Fix("noqa", (edit,)) for edit in edits])
        fixed = encode(fixed_text, encoding)
        if not parses(fixed):
            problems.append(f"{path}: adding noqa comments would break the file; skipped")
            continue
        problem = write_if_unchanged(path, data, fixed)
        if problem:
            problems.append(problem)
        else:
            added += len(applied)
    return added, problems
