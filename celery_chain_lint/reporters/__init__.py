"""Output formats: each reporter turns the sorted findings into text for one audience.

A reporter is ``render(findings, files, options=None) -> str``; ``options`` (``RenderOptions``)
carries what the text format shows beyond the findings (source lines, colour, fix counts).
"""
from __future__ import annotations

from importlib import import_module
from typing import Callable, Dict, Optional

from celery_chain_lint.reporters.options import RenderOptions

__all__ = ["FORMATS", "RenderOptions", "render", "reporter"]


# Format -> the module of this package rendering it, imported when used: a run writes one
# format (the others' JSON and XML libraries cost a hundredth of a second to import).
_MODULES: Dict[str, str] = {
    "text": "text",
    "json": "json_format",
    "sarif": "sarif",
    "github": "github",
    "gitlab": "gitlab",
    "junit": "junit",
}
FORMATS = tuple(_MODULES)


def reporter(output_format: str) -> Callable:
    """The ``render`` function of ``output_format``."""
    return import_module(f"{__name__}.{_MODULES[output_format]}").render


def render(output_format: str, findings, files: int, options: Optional[RenderOptions] = None,
           show_statistics: bool = False) -> str:
    options = options or RenderOptions()
    if show_statistics:
        from celery_chain_lint.reporters import statistics

        return statistics.render(findings, files, options, output_format)
    return reporter(output_format)(findings, files, options)
