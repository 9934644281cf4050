"""Output formats: each reporter turns the sorted findings into text for one audience."""
from __future__ import annotations

from typing import Callable, Dict, List

from celery_chain_lint.reporters import json_format, text

REPORTERS: Dict[str, Callable] = {
    "text": text.render,
    "json": json_format.render,
}
