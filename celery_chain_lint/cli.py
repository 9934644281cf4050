"""The command line: ``celery-chain-lint check``, ``verify``, ``rules`` and ``explain``.

Exit codes follow ruff and flake8: 0 no findings, 1 findings, 2 usage or internal error; 130
when interrupted (Ctrl-C), as the shell reports it.
``check`` never imports Celery nor the analysed code.
"""
from __future__ import annotations

import os
import sys
import traceback
from typing import List, Optional, Sequence

import click

from celery_chain_lint import __version__
from celery_chain_lint.load import PathError
from celery_chain_lint.reporters import FORMATS
from celery_chain_lint.reporters.printable import readable

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C


def _codes(values: Sequence[str]) -> List[str]:
    return [code.strip().upper() for value in values for code in value.split(",") if code.strip()]




@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="celery-chain-lint")
def cli() -> None:
    """Finds Celery workflow misuse before it reaches production."""


def _globs(values: Sequence[str]) -> List[str]:
    return [glob.strip() for value in values for glob in value.split(",") if glob.strip()]


def _per_file(values: Sequence[str]) -> dict:
    """``GLOB:CODE,CODE`` entries (flake8's --per-file-ignores)."""
    table: dict = {}
    for value in values:
        for entry in value.split():
            glob, sep, codes = entry.rpartition(":")
            if not sep or not glob:
                raise click.UsageError(f"--per-file-ignores entry '{entry}': expected GLOB:CODES")
            table.setdefault(glob, []).extend(_codes([codes]))
    return table


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "--output-format", "output_format", type=click.Choice(FORMATS),
              default="text", show_default=True, help="Output format.")
@click.option("-o", "--output-file", type=click.Path(dir_okay=False),
              help="Write the report to this file instead of standard output.")
@click.option("--show-source/--no-show-source", default=False,
              help="Show the source line of each finding, with a caret under the code.")
@click.option("--statistics", is_flag=True, help="Print the number of findings per code.")
@click.option("-q", "--quiet", is_flag=True, help="Print findings only, no summary.")
@click.option("-e", "--exit-zero", is_flag=True, help="Exit 0 even when findings are reported.")
@click.option("--exit-non-zero-on-fix", is_flag=True,
              help="Exit 1 when --fix changed a file, even if no finding remains.")
@click.option("--select", multiple=True,
              help="Rule codes or prefixes to enable, replacing the configuration's (e.g. "
                   "CCL001,CCL00; ALL for every rule).")
@click.option("--extend-select", multiple=True, help="Codes or prefixes to enable on top.")
@click.option("--ignore", multiple=True, help="Rule codes or prefixes to disable.")
@click.option("--per-file-ignores", multiple=True, metavar="GLOB:CODES",
              help="Codes not reported in matching files, replacing the configuration's.")
@click.option("--extend-per-file-ignores", multiple=True, metavar="GLOB:CODES",
              help="Per-file ignores added to the configuration's.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="The configuration file (pyproject.toml or celery-chain-lint.toml); by "
                   "default found by walking up from PATHS.")
@click.option("--isolated", is_flag=True, help="Ignore every configuration file.")
@click.option("--exclude", multiple=True, help="Globs to exclude, replacing the defaults.")
@click.option("--extend-exclude", multiple=True, help="Globs to exclude on top.")
@click.option("--respect-gitignore/--no-respect-gitignore", default=None,
              help="Skip files ignored by .gitignore (default: yes).")
@click.option("--force-exclude/--no-force-exclude", default=None,
              help="Apply excludes to paths given on the command line too.")
@click.option("--stdin-filename", help="The path of the file read from standard input (-).")
@click.option("--show-unused-noqa", is_flag=True,
              help="Report # noqa codes that suppress nothing (CCL998 unused-noqa).")
@click.option("--add-noqa", is_flag=True,
              help="Write a # noqa comment for every finding, then exit.")
@click.option("--ignore-noqa", is_flag=True, help="Report findings even on # noqa lines.")
@click.option("--fix/--no-fix", default=False, help="Apply the safe fixes.")
@click.option("--unsafe-fixes/--no-unsafe-fixes", default=False,
              help="Also apply (and count as fixable) fixes that may change behaviour.")
@click.option("--diff", is_flag=True,
              help="Print the changes --fix would make as a unified diff; write nothing.")
@click.option("--show-fixes/--no-show-fixes", default=False,
              help="List the fixes available (with --fix: the fixes applied, per file and "
                   "rule). Text format only.")
@click.option("--graph", "graph_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write a self-contained HTML page drawing each flagged workflow.")
@click.option("--watch", "-w", is_flag=True,
              help="Run again whenever a Python file or a configuration file under PATHS "
                   "changes, until Ctrl-C.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the analysis cache.")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="The analysis cache directory.")
@click.option("--show-coverage", is_flag=True,
              help="Say what the analyser saw: apps, tasks indexed, canvas sites modelled or "
                   "left unknown and why (after a text report, else on standard error).")
def check(paths, output_format, output_file, show_source, statistics, quiet, exit_zero,
          exit_non_zero_on_fix, select, extend_select, ignore, per_file_ignores,
          extend_per_file_ignores, config_path, isolated, exclude, extend_exclude,
          respect_gitignore, force_exclude, stdin_filename, show_unused_noqa, add_noqa,
          ignore_noqa, fix, unsafe_fixes, diff, show_fixes, graph_path, watch, no_cache,
          cache_dir, show_coverage) -> None:
    """Analyse PATHS (default: the current directory) without importing them.

    "-" reads one file from standard input (name it with --stdin-filename).
    """
    import dataclasses

    if watch:
        if "-" in paths or stdin_filename:
            raise click.UsageError("--watch cannot read standard input")
        if add_noqa or diff:
            raise click.UsageError("--watch cannot be combined with --add-noqa or --diff")
        from celery_chain_lint.editor.watch import watch as watch_paths

        watch_paths(list(paths) or ["."], _watched_command())

    from celery_chain_lint import engine
    from celery_chain_lint.config.files import ConfigError, resolve
    from celery_chain_lint.reporters import RenderOptions, render
    from celery_chain_lint.reporters.text import use_color
    from celery_chain_lint.load import path_filter, stdin_context

    paths = list(paths)
    use_stdin = paths == ["-"]
    if "-" in paths and not use_stdin:
        raise click.UsageError("'-' (standard input) cannot be combined with other paths")
    if stdin_filename and not use_stdin and paths:
        raise click.UsageError("--stdin-filename is for '-' (standard input)")
    if stdin_filename and not paths:
        use_stdin = True
    if use_stdin and add_noqa:
        raise click.UsageError("--add-noqa rewrites files; it cannot read standard input")
    config_paths = ([stdin_filename] if stdin_filename else []) if use_stdin else (paths or ["."])
    try:
        settings = resolve(config_paths, config_path, isolated)
    except ConfigError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_ERROR)
    flags = dict(select=_codes(select), extend_select=_codes(extend_select),
                 ignore=_codes(ignore), per_file=_per_file(per_file_ignores),
                 extend_per_file=_per_file(extend_per_file_ignores), exclude=_globs(exclude),
                 extend_exclude=_globs(extend_exclude), respect_gitignore=respect_gitignore,
                 force_exclude=force_exclude, show_unused_noqa=show_unused_noqa,
                 ignore_noqa=ignore_noqa, no_cache=no_cache, cache_dir=cache_dir)
    _apply_flags(settings, flags)
    # Each file is checked under its nearest configuration, as ruff does (load/__init__.py),
    # unless one was named or none is wanted.
    settings.flags = None if config_path or isolated else flags
    stdin_path = None
    if use_stdin:
        data = sys.stdin.buffer.read()
        stdin_path = stdin_filename or "stdin.py"
        if settings.force_exclude and stdin_filename and \
                path_filter(settings).excluded_with_ancestors(stdin_filename):
            if fix or diff:
                sys.stdout.buffer.write(data)
            sys.exit(EXIT_CLEAN)
        settings.overrides = {**settings.overrides, os.path.abspath(stdin_path): data}
        if stdin_filename and os.path.isfile(stdin_filename):
            paths = [stdin_filename]  # the engine adds the project around it as context
        else:  # a file not saved yet: analyse the package it will be part of
            paths = stdin_context(stdin_path, settings) if stdin_filename else []
    else:
        paths = paths or ["."]

    try:
        if add_noqa:
            from celery_chain_lint.fixes import fixer  # here: a plain check does without it

            added, problems = fixer.add_noqa(paths, settings)
            for problem in problems:
                click.echo(f"warning: {readable(problem)}", err=True)
            click.echo(f"Added {added} noqa directive{'s' if added != 1 else ''}.", err=True)
            sys.exit(EXIT_CLEAN)
        fixed_count, changed, outcome = 0, False, None
        if fix or diff:
            from celery_chain_lint.fixes import fixer

            outcome = fixer.fix(paths, settings, unsafe=unsafe_fixes,
                                write=not diff and not use_stdin)
            report = outcome.report
            for problem in outcome.problems:
                click.echo(f"warning: {readable(problem)}", err=True)
            fixed_count, changed = outcome.fixed, bool(outcome.changes)
            if diff:
                for change in outcome.changes:
                    if stdin_path is None or os.path.realpath(change.path) != \
                            os.path.realpath(stdin_path):
                        click.echo(readable(change.diff()), nl=False)  # a path's bytes
                    else:
                        click.echo(readable(dataclasses.replace(change, path=stdin_path).diff()),
                                   nl=False)
                noun = "finding" if fixed_count == 1 else "findings"
                click.echo(f"Would fix {fixed_count} {noun}." if fixed_count
                           else "No fixes available.", err=True)
                sys.exit(EXIT_FINDINGS if changed and not exit_zero else EXIT_CLEAN)
            if use_stdin:  # as ruff: the fixed source on stdout, the findings on stderr
                key = os.path.realpath(stdin_path)
                fixed = next((c.fixed for c in outcome.changes
                              if os.path.realpath(c.path) == key), data)
                sys.stdout.buffer.write(fixed)
                sys.stdout.flush()
        else:
            report = engine.check(paths, settings)
    except PathError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_ERROR)

    findings = report.findings
    files = report.files
    if use_stdin:
        key = os.path.realpath(stdin_path)
        findings = [dataclasses.replace(f, path=stdin_filename or "-") for f in findings
                    if os.path.realpath(f.path) == key]
        files = 1
    stream = sys.stderr if use_stdin and fix else sys.stdout
    options = RenderOptions(show_source=show_source, quiet=quiet, fixed=fixed_count,
                            unsafe_fixes=unsafe_fixes, fix_mode=fix,
                            color=output_file is None and output_format == "text"
                            and use_color(stream),
                            overrides={stdin_filename or "-": data} if use_stdin else {},
                            coverage=report.coverage, show_coverage=show_coverage,
                            no_celery=not report.celery_files)
    output = render(output_format, findings, files, options, show_statistics=statistics)
    output = _with_coverage(output, report, output_format, show_coverage and not statistics)
    if not quiet:
        from celery_chain_lint.index.coverage import warnings

        for warning in warnings(report.total_coverage()):
            click.echo(f"warning: {warning}", err=True)
    if show_fixes and output_format == "text" and not statistics:
        output += _fix_listing(findings, outcome.changes if fix else None, unsafe_fixes)
    if output_file:
        try:
            with open(output_file, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(output)
        except OSError as error:
            click.echo(f"error: cannot write {output_file}: {error.strerror}", err=True)
            sys.exit(EXIT_ERROR)
    elif output:
        click.echo(output, nl=False, file=stream, color=options.color)
    if graph_path:
        from celery_chain_lint.reporters.graph import write_html

        if not write_html(graph_path, [f.to_json() for f in findings], "celery-chain-lint check",
                          sys.stderr):
            sys.exit(EXIT_ERROR)
    global _FAST_EXIT
    _FAST_EXIT = True  # everything is written: console_main may skip the interpreter's teardown
    if exit_zero:
        sys.exit(EXIT_CLEAN)
    if findings or (exit_non_zero_on_fix and changed):
        sys.exit(EXIT_FINDINGS)
    sys.exit(EXIT_CLEAN)


def _with_coverage(output: str, report, output_format: str, show: bool) -> str:
    """``--show-coverage``: after a text report; on standard error for the other formats,
    whose output must stay one document (JSON: an object with one entry per project)."""
    if not show:
        return output
    from celery_chain_lint.reporters import coverage

    if output_format == "text":
        return output + coverage.render(report.coverage)
    if output_format == "json":
        import json

        text = json.dumps({"coverage": [seen.to_json() for seen in report.coverage]}, indent=2)
        click.echo(text, err=True)
    else:
        click.echo(coverage.render(report.coverage), err=True, nl=False)
    return output


def _fix_listing(findings, changes, unsafe_fixes: bool) -> str:
    """What ``--show-fixes`` adds under the report: the fixes applied (``--fix``), else those
    available."""
    from celery_chain_lint.rules.catalogue import all_rules
    from celery_chain_lint.reporters.text import fixes_applied, fixes_available

    if changes is not None:
        return fixes_applied(changes, {rule.code: rule.name for rule in all_rules()})
    return fixes_available(findings, unsafe_fixes)


def _watched_command() -> List[str]:
    """The command ``--watch`` runs on each change: this very ``check``, without --watch."""
    argv = _ARGV if _ARGV is not None else sys.argv[1:]
    return [sys.executable, "-m", "celery_chain_lint"] + [
        arg for arg in argv if arg not in ("--watch", "-w")]


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "--output-format", "output_format", type=click.Choice(["text", "json"]),
              default="text", show_default=True, help="Output format.")
@click.option("-o", "--output-file", type=click.Path(dir_okay=False),
              help="Write the report to this file instead of standard output.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write a self-contained HTML page drawing each finding's workflow, "
                   "with what the worker observed.")
@click.option("--broker", metavar="URL", help="Broker URL (default: embedded, no server needed).")
@click.option("--backend", metavar="URL",
              help="Result backend URL (default: embedded file-system backend).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds a replayed workflow may run before it counts as hung.")
@click.option("--execute", is_flag=True,
              help="Import and RUN the project's own tasks where a rule needs the real code "
                   "(CCL004 result sizes). Off by default: verify never imports your code.")
@click.option("--select", multiple=True, help="Rule codes or prefixes to verify.")
@click.option("--ignore", multiple=True, help="Rule codes or prefixes not to verify.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="The configuration file (as for check).")
@click.option("--isolated", is_flag=True, help="Ignore every configuration file.")
def verify(paths, output_format, output_file, html_path, broker, backend, timeout, execute,
           select, ignore, config_path, isolated) -> None:
    """Run check on PATHS, then replay each finding on a real Celery worker.

    Each finding is confirmed, not-reproduced or skipped (with why), with the evidence. Exit 0
    when none is confirmed, 1 when some are, 2 on a usage or infrastructure error.
    """
    from celery_chain_lint.config.files import ConfigError, resolve
    from celery_chain_lint.harness.verify import Options, main_verify

    paths = list(paths) or ["."]
    try:
        settings = resolve(paths, config_path, isolated)
    except ConfigError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_ERROR)
    _apply_flags(settings, dict(select=_codes(select), extend_select=[], ignore=_codes(ignore),
                                per_file={}, extend_per_file={}, exclude=[], extend_exclude=[],
                                respect_gitignore=None, force_exclude=None,
                                show_unused_noqa=False, ignore_noqa=False, no_cache=False,
                                cache_dir=None))
    options = Options(broker=broker, backend=backend, timeout=timeout, execute=execute)
    try:  # opened before the slow part runs: a path that cannot be written fails at once
        out = _report_stream(output_file)
    except OSError as error:
        click.echo(f"error: cannot write {output_file}: {error.strerror or error}", err=True)
        sys.exit(EXIT_ERROR)
    try:
        with out as stream:
            code = main_verify(paths, options, output_format, settings, out=stream,
                               html_path=html_path)
    except PathError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(code)


def _report_stream(output_file: Optional[str]):
    """Where a report goes: the file, else standard output (left open)."""
    import contextlib

    if not output_file:
        return contextlib.nullcontext(sys.stdout)
    return open(output_file, "w", encoding="utf-8", newline="\n")


@cli.command("rules")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown"]),
              default="text", help="markdown: the README's rules table.")
def list_rules(output_format) -> None:
    """List every rule: code, name, summary, and whether --fix can fix it: [fix] (safe),
    [unsafe fix] (only with --unsafe-fixes) or [fix, sometimes unsafe]."""
    import json

    from celery_chain_lint.rules.catalogue import all_rules, markdown_table

    if output_format == "markdown":
        click.echo(markdown_table(), nl=False)
        return
    if output_format == "json":
        click.echo(json.dumps([{"code": r.code, "name": r.name, "summary": r.summary,
                                "fixable": r.fixable,
                                "fix_safety": r.fix_safety if r.fixable else None}
                               for r in all_rules()], indent=2))
        return
    for rule in all_rules():
        label = FIX_LABELS[rule.fix_safety] if rule.fixable else ""
        click.echo(f"{rule.code}  {rule.name:<24} {label}{rule.summary}")


# What ``rules`` shows before a fixable rule's summary: ``[fix]`` only where --fix alone
# applies every fix of the rule (ruff says "unsafe" too, and hides those fixes by default).
FIX_LABELS = {"safe": "[fix] ", "unsafe": "[unsafe fix] ",
              "sometimes unsafe": "[fix, sometimes unsafe] "}


@cli.command()
@click.argument("code")
def explain(code) -> None:
    """Print the documentation of one rule (by code or name)."""
    from celery_chain_lint.rules.catalogue import all_rules, explanation

    for rule in all_rules():
        if code.upper() == rule.code or code == rule.name:
            click.echo(explanation(rule))
            return
    raise click.UsageError(f"unknown rule: {code}")


@cli.command()
def server() -> None:
    """Run the Language Server (LSP over standard input and output), for editors.

    Needs pygls: pip install 'celery-chain-lint[lsp]'.
    """
    try:
        import pygls  # noqa: F401
    except ImportError:
        click.echo("error: the server needs pygls: pip install 'celery-chain-lint[lsp]'",
                   err=True)
        sys.exit(EXIT_ERROR)
    from celery_chain_lint.editor.server import serve

    serve()


def main(argv: Optional[Sequence[str]] = None) -> None:
    global _ARGV
    _ARGV = list(argv) if argv is not None else sys.argv[1:]
    try:
        cli.main(args=argv, prog_name="celery-chain-lint", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(EXIT_ERROR)
    except click.exceptions.Abort as abort:  # click turns Ctrl-C into Abort
        sys.exit(EXIT_INTERRUPTED if isinstance(abort.__context__, KeyboardInterrupt)
                 else EXIT_ERROR)
    except KeyboardInterrupt:  # raised outside click's own handler
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit:
        raise
    except Exception:  # an internal error must not look like "findings" (exit 1)
        traceback.print_exc()
        click.echo("celery-chain-lint: internal error (please report it)", err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_CLEAN)


def console_main() -> None:
    """The ``celery-chain-lint`` command: ``main`` tuned for one short run.

    The cyclic garbage collector runs ten times less often (the analysis allocates millions of
    short-lived objects and creates few cycles: about a tenth of the time), and a ``check`` that
    completed leaves with ``os._exit`` once its output is flushed: tearing down the
    interpreter's objects would cost a fifth of a second more, for nothing (mypy does the same).
    Everything ``check`` writes (reports, fixes, the cache) is closed before it returns."""
    import gc

    gc.set_threshold(20_000, 50, 50)
    try:
        main()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if not _FAST_EXIT or code not in (EXIT_CLEAN, EXIT_FINDINGS):
            raise
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            raise done from None
        os._exit(code)


_FAST_EXIT = False  # set by a ``check`` that completed
_ARGV: Optional[List[str]] = None  # the arguments main() was given (check --watch re-runs them)


if __name__ == "__main__":
    console_main()


def _apply_flags(settings, flags: dict) -> None:
    from celery_chain_lint.config.files import ConfigError, apply_flags

    try:
        apply_flags(settings, **flags)
    except ConfigError as error:
        raise click.UsageError(str(error))
