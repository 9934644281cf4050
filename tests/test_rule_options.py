"""Rule options change what a rule reports, and only when configured."""
from __future__ import annotations

from celery_chain_lint import engine
from celery_chain_lint.config.settings import Settings

MIXED = """\
from celery import Celery, chain
app = Celery("example")

@app.task
def charge(order):
    return order

@app.task
def ship(order):
    return order

chain(charge.si(1), ship.si(1)).delay()
"""


def _codes(tmp_path, settings):
    (tmp_path / "flows.py").write_text(MIXED)
    settings.use_cache = False
    return [f.code for f in engine.check([str(tmp_path)], settings).findings]


def test_independent_chain_of_different_tasks_needs_mixed_tasks(tmp_path):
    assert "CCL003" not in _codes(tmp_path, Settings())
    configured = Settings(rule_options={"independent-chain": {"mixed-tasks": True}})
    assert "CCL003" in _codes(tmp_path, configured)
