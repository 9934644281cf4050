"""Runs the analysis: files -> per-file facts -> project index -> rules -> findings."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Sequence, Tuple, Type

from celery_chain_lint.config.settings import Settings
from celery_chain_lint.findings import Finding
from celery_chain_lint.fixes.noqa import suppress
from celery_chain_lint.rules.base import Rule

if TYPE_CHECKING:
    from celery_chain_lint.index.coverage import Coverage
    from celery_chain_lint.index.project import Project


@dataclass
class Report:
    findings: List[Finding] = field(default_factory=list)
    files: int = 0
    stats: Dict[str, int] = field(default_factory=dict)  # what the pipeline did (benchmarks)
    # Absolute path -> content hash (cache.content_hash) of the bytes the findings are about:
    # --fix edits a file only if it still holds exactly those bytes.
    digests: Dict[str, str] = field(default_factory=dict)
    # What the analyser saw of each project (index/coverage.py): never a silent blind run.
    coverage: List["Coverage"] = field(default_factory=list)
    celery_files: int = 0  # reported files related to Celery at all (LoadedProject.celery_files)

    def total_coverage(self) -> "Coverage":
        from celery_chain_lint.index.coverage import Coverage

        total = Coverage()
        for seen in self.coverage:
            total = total.add(seen)
        return total


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
    results key holds their hashes; the command-line flags are applied in the settings
    already, and which files each configuration reports on is in the key too)."""
    return repr(sorted((name, value) for name, value in vars(settings).items()
                       if name not in ("overrides", "cache_dir", "use_cache", "flags")))


def check(paths: Sequence[str], settings: Optional[Settings] = None, *,
          prefilter: bool = True, jobs: Optional[int] = None) -> Report:
    """Analyse ``paths``; names resolve against the whole project each path belongs to (see
    ``load.load_projects``), findings are reported for ``paths`` only."""
    from celery_chain_lint.load import load_projects

    settings = settings or Settings()
    findings: List[Finding] = []
    report = Report()
    with load_projects(paths, settings, prefilter=prefilter, jobs=jobs,
                       warm_up=_import_the_analyser,
                       reads_task_methods_on_functions=_reads_task_methods_on_functions) as loaded:
        report.files = len(loaded.sources)
        for unit in loaded.projects:
            found, seen = _findings_of(unit, unit.settings)
            # per-file-ignores, ``# noqa`` and CCL998 unused-noqa (fixes/noqa.py)
            findings.extend(suppress(found, unit.sources, unit.settings))
            if seen is not None:
                seen.files = len(unit.sources)
                seen.root = unit.root if len(loaded.projects) > 1 else None
                report.coverage.append(seen)
            for name, value in unit.stats.items():
                report.stats[name] = report.stats.get(name, 0) + value
            report.digests.update(unit.digests())
            report.celery_files += unit.celery_files()
    report.findings = sorted(findings, key=Finding.sort_key)
    return report


def _reads_task_methods_on_functions(settings: Settings) -> bool:
    """Whether a selected rule reads task methods called on plain functions: asked only when
    a project is analysed (the rules are imported then; a run whose findings are cached
    imports none)."""
    return any(rule.reads_task_methods_on_functions for rule in settings.rules())


def _import_the_analyser() -> None:
    """What a run needs once the files are parsed: the project model and the rules."""
    from celery_chain_lint.index import project  # noqa: F401
    from celery_chain_lint.rules import ALL_RULES  # noqa: F401


def _findings_of(unit, settings: Settings) -> Tuple[List[Finding], Optional["Coverage"]]:
    """The findings of one project and what the analyser saw of it: cached when nothing
    changed since a run with the same configuration, else the rules' (run on a deep stack:
    they follow names, decorators, classes and canvases recursively)."""
    from celery_chain_lint.index.coverage import coverage
    from celery_chain_lint.load import run_deep

    key = unit.results_key(settings_key(settings))
    cached = unit.cached_results(key)
    if cached is not None:
        return cached
    project, problems = unit.project()
    found = run_deep(run_rules, project, settings.rules(), settings)
    findings = sorted(problems + found, key=Finding.sort_key)
    seen = run_deep(coverage, project)
    unit.store_results(key, findings, seen)
    return findings, seen
