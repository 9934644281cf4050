"""One file to its facts: read with bounded memory, decoded, parsed and extracted, or a located
CCL999 finding saying why it could not be. Runs in the worker processes too."""
from __future__ import annotations

import os
from typing import FrozenSet, Optional, Tuple

from celery_chain_lint.facts.ir import Span
from celery_chain_lint.facts.model import ModuleFacts
from celery_chain_lint.findings import PARSE_ERROR_CODE, PARSE_ERROR_NAME, Finding
from celery_chain_lint.load.discovery import SourceFile


def analyse_file(source: SourceFile, elide_quiet_bodies: bool = False,
                 celery_modules: FrozenSet[str] = frozenset()
                 ) -> Tuple[Optional[ModuleFacts], Optional[Finding]]:
    """The file's facts, or a finding saying why it could not be analysed (located: a syntax
    error at its line and column, a byte that does not decode, nesting too deep...). Never
    raises: one odd file must not stop the run (``source.py`` says what is checked).

    ``elide_quiet_bodies``: leave the bodies that hold nothing read eagerly for later
    (``bodies.py``); the caller must then wrap the facts with ``bodies.with_bodies_on_demand``.
    ``celery_modules``: see ``bodies.quiet_bodies_elided``."""
    from celery_chain_lint.load.source import MAX_FILE_BYTES, SourceError, run_deep

    try:
        if source.content is not None:
            data = source.content
        else:
            with open(source.path, "rb") as handle:  # memory stays bounded:
                too_large = os.fstat(handle.fileno()).st_size > MAX_FILE_BYTES
                data = b"" if too_large else handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES or source.content is None and too_large:
            return None, _unanalysable(source, Span(1, 1, 1, 1), f"file too large to analyse "
                                       f"(more than {MAX_FILE_BYTES // 2 ** 20} MB)")
    except OSError as error:
        reason = error.strerror or str(error)
        return None, _unanalysable(source, Span(1, 1, 1, 1), f"cannot read file: {reason}")
    try:
        return run_deep(_parse_and_extract, data, source, elide_quiet_bodies,
                        celery_modules), None
    except SourceError as error:
        span = Span(error.line, error.column, error.line, error.column)
        return None, _unanalysable(source, span, error.message)
    except RecursionError:
        return None, _unanalysable(source, Span(1, 1, 1, 1), "nesting too deep to analyse")
    except MemoryError:
        return None, _unanalysable(source, Span(1, 1, 1, 1), "not enough memory to analyse")
    except Exception as error:  # a bug of ours: say so, and analyse the other files
        return None, _unanalysable(source, Span(1, 1, 1, 1),
                                   f"internal error while analysing this file (please report "
                                   f"it): {type(error).__name__}: {error}"[:300])


def _parse_and_extract(data: bytes, source: SourceFile, elide_quiet_bodies: bool = False,
                       celery_modules: FrozenSet[str] = frozenset()) -> ModuleFacts:
    from celery_chain_lint.facts.extract import extract_module
    from celery_chain_lint.facts.whole_file import add_whole_file_facts
    from celery_chain_lint.load.source import (MAX_TOKENS, SourceError, check_nesting,
                                               check_nesting_by_statement, decode, parse_text)

    text = decode(data).text  # a located SourceError when it does not decode
    # A text that may hold too many tokens is counted before ``ast`` sees it: it would use
    # memory in proportion to it first (GBs for a generated module).
    nesting_checked = len(text) > MAX_TOKENS
    if nesting_checked:
        check_nesting(text)
    if elide_quiet_bodies:
        import ast

        from celery_chain_lint.load.bodies import quiet_bodies_elided

        try:
            tree = ast.parse(data)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            tree = None  # the whole-file pass below locates the problem
        if tree is not None:
            if not nesting_checked:  # reported for the whole file, elided bodies included
                check_nesting_by_statement(text, tree)
            try:
                return quiet_bodies_elided(data, source.path, source.module, source.is_package,
                                           nesting_checked=True, celery_modules=celery_modules,
                                           tree=tree)
            except (SyntaxError, ValueError, LookupError, SourceError):
                pass  # the whole-file pass below locates the problem
    tree = parse_text(text, nesting_checked=nesting_checked)
    facts = extract_module(tree, source.path, source.module, source.is_package, text)
    return add_whole_file_facts(facts, data)


def _unanalysable(source: SourceFile, span: Span, message: str) -> Finding:
    return Finding(PARSE_ERROR_CODE, PARSE_ERROR_NAME, source.path, span, message)
