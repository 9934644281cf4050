"""Runs the analysis: files -> per-file facts -> project index -> rules -> findings."""
from __future__ import annotations

from dataclasses import dataclass, field
import os
from typing import (TYPE_CHECKING, Dict, FrozenSet, Iterable, List, Optional, Sequence,
                    Tuple, Type)

from celery_chain_lint.discovery import SourceFile, discover, with_overrides
from celery_chain_lint.facts.ir import Span
from celery_chain_lint.facts.model import ModuleFacts
from celery_chain_lint.noqa import suppress
from celery_chain_lint.rules.base import Finding, Rule
from celery_chain_lint.settings import Settings

if TYPE_CHECKING:
    from celery_chain_lint.project import Project

PARSE_ERROR_CODE = "CCL999"
PARSE_ERROR_NAME = "could-not-analyse"


@dataclass
class Report:
    findings: List[Finding] = field(default_factory=list)
    files: int = 0
    stats: Dict[str, int] = field(default_factory=dict)  # what the pipeline did (benchmarks)
    # Absolute path -> content hash (cache.content_hash) of the bytes the findings are about:
    # --fix edits a file only if it still holds exactly those bytes.
    digests: Dict[str, str] = field(default_factory=dict)


def analyse_file(source: SourceFile, elide_quiet_bodies: bool = False,
                 celery_modules: FrozenSet[str] = frozenset()
                 ) -> Tuple[Optional[ModuleFacts], Optional[Finding]]:
    """The file's facts, or a finding saying why it could not be analysed (located: a syntax
    error at its line and column, a byte that does not decode, nesting too deep...). Never
    raises: one odd file must not stop the run (``source.py`` says what is checked).

    ``elide_quiet_bodies``: leave the bodies that hold nothing read eagerly for later
    (``bodies.py``); the caller must then wrap the facts with ``bodies.with_bodies_on_demand``.
    ``celery_modules``: see ``bodies.quiet_bodies_elided``."""
    from celery_chain_lint.source import MAX_FILE_BYTES, SourceError, run_deep

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
    from celery_chain_lint.source import (SourceError, check_nesting_by_statement, decode,
                                          parse_text)

    text = decode(data).text  # a located SourceError when it does not decode
    if elide_quiet_bodies:
        import ast

        from celery_chain_lint.bodies import quiet_bodies_elided

        try:
            tree = ast.parse(data)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            tree = None  # the whole-file pass below locates the problem
        if tree is not None:
            # Reported for the whole file, elided bodies included.
            check_nesting_by_statement(text, tree)
            try:
                return quiet_bodies_elided(data, source.path, source.module, source.is_package,
                                           nesting_checked=True, celery_modules=celery_modules,
                                           tree=tree)
            except (SyntaxError, ValueError, LookupError, SourceError):
                pass  # the whole-file pass below locates the problem
    tree = parse_text(text)
    return extract_module(tree, source.path, source.module, source.is_package, text)


def _unanalysable(source: SourceFile, span: Span, message: str) -> Finding:
    return Finding(PARSE_ERROR_CODE, PARSE_ERROR_NAME, source.path, span, message)


def run_rules(project: Project, rules: Iterable[Type[Rule]],
              settings: Optional[Settings] = None) -> List[Finding]:
    findings = {}
    for rule in rules:
        for finding in rule(settings).check(project):
            if project.reports_on(finding.path):
                findings.setdefault((finding.code, finding.path, finding.span), finding)
    return sorted(findings.values(), key=Finding.sort_key)


def settings_key(settings: Settings) -> str:
    """The configuration that decides the findings, as text (file contents excluded: the
    results key holds their hashes)."""
    return repr(sorted((name, value) for name, value in vars(settings).items()
                       if name not in ("overrides", "cache_dir", "use_cache")))


def check(paths: Sequence[str], settings: Optional[Settings] = None, *,
          prefilter: bool = True, jobs: Optional[int] = None) -> Report:
    """Analyse ``paths``; names resolve against the whole project each path belongs to (see
    ``pipeline.project_sources``), findings are reported for ``paths`` only."""
    from celery_chain_lint.pipeline import Analysis, fork_parser_child, project_sources

    settings = settings or Settings()
    analysis = Analysis(settings, prefilter=prefilter, jobs=jobs)
    # Importing libcst starts now, in a child, in case a few files changed (ParserChild).
    analysis.child = fork_parser_child(analysis)
    try:
        discover_options = dict(excludes=set(settings.exclude) | set(settings.extend_exclude),
                                source_roots=settings.src, path_filter=settings.path_filter())
        sources = discover(paths, force_exclude=settings.force_exclude, **discover_options)
        sources = with_overrides(sources, settings.overrides, settings.src)
        context = project_sources(paths, sources, discover_options)
        report = Report(files=len(sources))
        analysis.prepare(sources, context)
        # Nothing changed since a run with the same configuration: its findings stand.
        key = analysis.results_key(settings_key(settings))
        findings = analysis.cached_results(key)
        if findings is None:
            project, problems = analysis.analyse()
            rules = settings.rules()
            from celery_chain_lint.source import run_deep

            # On a deep stack: rules follow names, decorators, classes and canvases recursively.
            found = run_deep(run_rules, project, rules, settings)
            findings = sorted(problems + found, key=Finding.sort_key)
            analysis.store_results(key, findings)
    finally:
        analysis.close()
    report.findings = findings
    # per-file-ignores, ``# noqa`` and CCL998 unused-noqa (celery_chain_lint/noqa.py)
    report.findings = suppress(report.findings, sources, settings)
    report.stats = analysis.stats
    report.digests = {f.abspath: f.digest for f in analysis.files if f.digest}
    return report
