"""Runs the analysis: files -> per-file facts -> project index -> rules -> findings."""
from __future__ import annotations

from dataclasses import dataclass, field
import os
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple, Type

from celery_chain_lint.discovery import SourceFile, discover, with_overrides
from celery_chain_lint.facts.ir import Span
from celery_chain_lint.facts.model import ModuleFacts
from celery_chain_lint.noqa import suppress
from celery_chain_lint.project import Project
from celery_chain_lint.rules.base import Finding, Rule
from celery_chain_lint.settings import Settings

PARSE_ERROR_CODE = "CCL999"
PARSE_ERROR_NAME = "could-not-analyse"


@dataclass
class Report:
    findings: List[Finding] = field(default_factory=list)
    files: int = 0
    stats: Dict[str, int] = field(default_factory=dict)  # what the pipeline did (benchmarks)


def analyse_file(source: SourceFile) -> Tuple[Optional[ModuleFacts], Optional[Finding]]:
    """The file's facts, or a finding saying why it could not be analysed."""
    import libcst as cst  # here, not at start-up: a warm run never parses

    from celery_chain_lint.facts.extract import extract_module

    try:
        if source.content is not None:
            data = source.content
        else:
            with open(source.path, "rb") as handle:
                data = handle.read()
    except OSError as error:
        return None, _unanalysable(source, Span(1, 1, 1, 1), f"cannot read file: {error.strerror}")
    try:
        tree = cst.parse_module(data)
    except cst.ParserSyntaxError as error:
        line, column = error.raw_line, error.raw_column + 1
        message = str(error.message) if hasattr(error, "message") else str(error)
        return None, _unanalysable(source, Span(line, column, line, column),
                                   f"syntax error: {message.splitlines()[0]}")
    except (UnicodeDecodeError, LookupError, SyntaxError) as error:
        return None, _unanalysable(source, Span(1, 1, 1, 1), f"cannot decode file: {error}")
    except RecursionError:
        return None, _unanalysable(source, Span(1, 1, 1, 1), "nesting too deep to parse")
    try:
        return extract_module(tree, source.path, source.module, source.is_package), None
    except RecursionError:
        return None, _unanalysable(source, Span(1, 1, 1, 1), "nesting too deep to analyse")


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
    from celery_chain_lint.pipeline import Analysis, project_sources

    settings = settings or Settings()
    rules = settings.rules()
    discover_options = dict(excludes=set(settings.exclude) | set(settings.extend_exclude),
                            source_roots=settings.src, path_filter=settings.path_filter())
    sources = discover(paths, force_exclude=settings.force_exclude, **discover_options)
    sources = with_overrides(sources, settings.overrides, settings.src)
    context = project_sources(paths, sources, discover_options)
    report = Report(files=len(sources))
    analysis = Analysis(settings, prefilter=prefilter, jobs=jobs)
    analysis.prepare(sources, context)
    # Nothing changed since a run with the same configuration: its findings stand.
    key = analysis.results_key(settings_key(settings))
    findings = analysis.cached_results(key)
    if findings is None:
        project, problems = analysis.analyse()
        findings = sorted(problems + run_rules(project, rules, settings), key=Finding.sort_key)
        analysis.store_results(key, findings)
    report.findings = findings
    # per-file-ignores, ``# noqa`` and CCL998 unused-noqa (celery_chain_lint/noqa.py)
    report.findings = suppress(report.findings, sources, settings)
    report.stats = analysis.stats
    return report
