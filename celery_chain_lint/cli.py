"""The command line: ``celery-chain-lint check``, ``rules`` and ``explain``.

Exit codes follow ruff and flake8: 0 no findings, 1 findings, 2 usage or internal error.
``check`` never imports Celery nor the analysed code.
"""
from __future__ import annotations

import sys
import traceback
from typing import List, Optional, Sequence

import click

from celery_chain_lint import __version__
from celery_chain_lint.discovery import PathError

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _codes(values: Sequence[str]) -> List[str]:
    return [code.strip().upper() for value in values for code in value.split(",") if code.strip()]




@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="celery-chain-lint")
def cli() -> None:
    """Finds Celery workflow misuse before it reaches production."""


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
@click.option("--select", multiple=True, help="Rule codes or prefixes to enable (e.g. CCL001,CCL00).")
@click.option("--ignore", multiple=True, help="Rule codes or prefixes to disable.")
def check(paths, output_format, select, ignore) -> None:
    """Analyse PATHS (default: the current directory) without importing them."""
    from celery_chain_lint import engine
    from celery_chain_lint.reporters import REPORTERS
    from celery_chain_lint.settings import Settings

    settings = Settings()
    if select:
        settings.select = _codes(select)
    if ignore:
        settings.ignore = _codes(ignore)
    unknown = settings.unknown_codes(settings.select + settings.ignore)
    if unknown:
        raise click.UsageError(f"unknown rule code or prefix: {', '.join(unknown)}")
    try:
        report = engine.check(list(paths) or ["."], settings)
    except PathError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(REPORTERS[output_format](report.findings, report.files), nl=False)
    sys.exit(EXIT_FINDINGS if report.findings else EXIT_CLEAN)


@cli.command("rules")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
def list_rules(output_format) -> None:
    """List every rule: code, name, summary, and whether --fix can fix it."""
    import json

    from celery_chain_lint.rules import ALL_RULES

    if output_format == "json":
        click.echo(json.dumps([{"code": r.code, "name": r.name, "summary": r.summary,
                                "fixable": r.fixable} for r in ALL_RULES], indent=2))
        return
    for rule in ALL_RULES:
        click.echo(f"{rule.code}  {rule.name:<24} {'[fix] ' if rule.fixable else ''}{rule.summary}")


@cli.command()
@click.argument("code")
def explain(code) -> None:
    """Print the documentation of one rule (by code or name)."""
    from celery_chain_lint.rules import ALL_RULES

    for rule in ALL_RULES:
        if code.upper() == rule.code or code == rule.name:
            click.echo(rule.documentation())
            return
    raise click.UsageError(f"unknown rule: {code}")


def main(argv: Optional[Sequence[str]] = None) -> None:
    try:
        cli.main(args=argv, prog_name="celery-chain-lint", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(EXIT_ERROR)
    except click.exceptions.Abort:
        sys.exit(EXIT_ERROR)
    except SystemExit:
        raise
    except Exception:  # an internal error must not look like "findings" (exit 1)
        traceback.print_exc()
        click.echo("celery-chain-lint: internal error (please report it)", err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_CLEAN)


if __name__ == "__main__":
    main()
