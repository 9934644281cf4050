"""The replay data (``workflow/replay.py``): typed where it is built and where it is read, the
same JSON as ever in between.

- every finding on the fixtures carries a ``Replay`` (rules build typed objects), and its JSON
  goes through ``Replay.from_json``/``to_json`` unchanged, key order included (the JSON is
  part of the output: ``--format json``, SARIF, the cache);
- the harness reads the typed objects, never the JSON's keys: a grep of its modules, and the
  confirmers' shared preamble (no replay data, no task named) answered without a worker.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from celery_chain_lint import engine
from celery_chain_lint.config.settings import Settings
from celery_chain_lint.workflow.replay import Replay

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
HARNESS = ROOT / "celery_chain_lint" / "harness"


@pytest.fixture(scope="module")
def fixture_findings():
    settings = Settings(select=["ALL"], use_cache=False)
    return engine.check([str(FIXTURES)], settings).findings


def test_every_rule_builds_typed_replay_data(fixture_findings):
    with_replay = [f for f in fixture_findings if f.replay is not None]
    assert with_replay
    assert all(isinstance(f.replay, Replay) for f in with_replay)
    # Every rule that hands the harness data is on the fixtures (CCL017 has none to give).
    codes = {f.code for f in with_replay}
    assert {f"CCL{n:03d}" for n in range(1, 28)} - codes == {"CCL017"}


def test_the_replay_json_of_every_finding_round_trips_unchanged(fixture_findings):
    for finding in fixture_findings:
        written = finding.to_json().get("replay")
        if written is None:
            continue
        text = json.dumps(written)
        again = Replay.from_json(json.loads(text)).to_json()
        assert json.dumps(again) == text, f"{finding.code} {finding.path}:{finding.span.line}"
        assert Replay.from_json(json.loads(text)) == finding.replay


# Keys that exist only in the replay JSON: not in the shadow journal, the run states, the
# behaviours, the worker's config or the evidence, which the harness does read as dicts.
REPLAY_KEYS = (
    "canvas", "application", "callbacks", "steps", "members", "header", "flagged_task",
    "literal", "placeholder", "stand_in", "receivers", "losing", "per_member", "pending",
    "workflows", "retries_itself", "replaces_itself", "returns", "result_passed", "called",
    "missing", "function", "params", "has_default", "class_based", "lenient", "unrolled",
    "shapes", "links", "network_call", "replay",
)
DICT_READ = re.compile(r"""(?:\.get\(\s*|\[\s*)["'](%s)["']""" % "|".join(REPLAY_KEYS))
NODE_TYPE = re.compile(r"""["']type["']\s*:\s*["'](signature|chain|group|chord|called|map)""")


def _harness_sources():
    return sorted(HARNESS.rglob("*.py"))


def test_the_harness_reads_no_replay_key_of_a_dict():
    """Outside ``Claim.from_json`` (the one place a finding's JSON enters the harness), no
    harness module reads a replay key off a dict or builds a canvas node as a dict."""
    offenders = []
    for path in _harness_sources():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if 'finding.get("replay")' in line and path.name == "__init__.py" \
                    and path.parent.name == "confirmers":
                continue
            if DICT_READ.search(line) or NODE_TYPE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_grep_catches_what_it_must():
    assert DICT_READ.search('replay.get("canvas")')
    assert DICT_READ.search("node['steps']")
    assert DICT_READ.search('finding.get("replay")')
    assert NODE_TYPE.search('{"type": "signature", "task": name}')
    assert not DICT_READ.search('entry.get("task")')  # the journal's, a dict by design


pytest.importorskip("celery")


def test_the_shared_preamble_skips_before_a_confirmer_runs():
    from celery_chain_lint.harness.confirmers import Claim, confirmer_for

    # No replay data at all: said once, for every confirmer that needs it.
    for code in ("CCL001", "CCL005", "CCL011", "CCL024"):
        verdict = confirmer_for(code)(Claim(code, "x.py", 1), None)
        assert (verdict.status, verdict.reason) == \
            ("skipped", "the finding carries no replay data")
    # Replay data without what the confirmer needs: its own reason, still without a worker.
    verdict = confirmer_for("CCL006")(Claim("CCL006", replay=Replay()), None)
    assert verdict.reason == "the replay data does not name the waiting task"
    verdict = confirmer_for("CCL019")(Claim("CCL019", replay=Replay()), None)
    assert verdict.reason == "the finding carries no replay data naming the receiving tasks"
    verdict = confirmer_for("CCL003")(Claim("CCL003", replay=Replay()), None)
    assert verdict.reason == "the replay data holds no workflow"
