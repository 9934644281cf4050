"""Output formats: each reporter turns the sorted findings into text for one audience.

A reporter is ``render(findings, files, options=None) -> str``; ``options`` (``RenderOptions``)
carries what the text format shows beyond the findings (source lines, colour, fix counts).
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

from celery_chain_lint.reporters import (github, gitlab, json_format, junit, sarif, statistics,
                                         text)
from celery_chain_lint.reporters.options import RenderOptions

__all__ = ["FORMATS", "REPORTERS", "RenderOptions", "render"]


REPORTERS: Dict[str, Callable] = {
    "text": text.render,
    "json": json_format.render,
    "sarif": sarif.render,
    "github": github.render,
    "gitlab": gitlab.render,
    "junit": junit.render,
}
FORMATS = tuple(REPORTERS)


def render(output_format: str, findings, files: int, options: Optional[RenderOptions] = None,
           show_statistics: bool = False) -> str:
    options = options or RenderOptions()
    if show_statistics:
        return statistics.render(findings, files, options, output_format)
    return REPORTERS[output_format](findings, files, options)
