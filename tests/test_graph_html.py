"""``verify --html`` and ``check --graph``: one self-contained page, one graph per flagged
workflow with the failing node marked and what the worker observed; rendered in headless
Chromium (Debian's package, installed by scripts/ensure-chromium in CI), whose DOM is checked
and whose screenshot is kept next to the report."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List

import pytest

from hostile_helpers import ROOT, run_cli

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser")
                 if shutil.which(name)), None)


class Sections(HTMLParser):
    """Per ``<section class="finding">``: its graphs and its nodes' attributes."""

    def __init__(self):
        super().__init__()
        self.sections: List[Dict] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "section" and attributes.get("class") == "finding":
            self.sections.append({"code": attributes["data-code"], "graphs": 0, "nodes": []})
        elif tag == "svg" and "workflow-graph" in (attributes.get("class") or ""):
            self.sections[-1]["graphs"] += 1
        elif tag == "g" and "node" in (attributes.get("class") or "").split():
            self.sections[-1]["nodes"].append(attributes)


def sections(page: str) -> List[Dict]:
    parser = Sections()
    parser.feed(page)
    return parser.sections


def assert_self_contained(page: str) -> None:
    assert not re.search(r"<script|<link|<img|@import|url\((?!#)", page, re.I)
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", page, re.I)


@pytest.fixture
def shop(tmp_path):
    shutil.copytree(ROOT / "fixtures" / "shop", tmp_path / "shop",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_check_graph_draws_each_flagged_workflow(shop):
    result = run_cli("check", "--no-cache", "--graph", "graph.html", "--format", "json", "shop",
                     cwd=shop)
    assert result.returncode == 1, result.stderr
    findings = json.loads(result.stdout)
    page = (shop / "graph.html").read_text()
    assert_self_contained(page)
    drawn = sections(page)
    assert [s["code"] for s in drawn] == [f["code"] for f in findings]
    for section, finding in zip(drawn, findings):
        assert section["graphs"] == (1 if finding.get("replay") else 0)
        flagged = [n for n in section["nodes"] if n["data-flagged"] == "true"]
        assert len(flagged) == 1, (finding["path"], finding["line"])
        assert flagged[0]["data-task"] == finding["replay"]["flagged_task"]


def test_an_unwritable_graph_path_is_an_error(shop):
    result = run_cli("check", "--no-cache", "--graph", "no/such/dir/graph.html", "shop", cwd=shop)
    assert result.returncode == 2
    assert b"error: cannot write no/such/dir/graph.html" in result.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install "
                    "chromium; scripts/ensure-chromium does it in CI)")
def test_verify_html_report_of_the_sample_project_in_chromium(shop):
    result = run_cli("verify", "--format", "json", "-o", "results.json", "--html", "report.html",
                     "shop", cwd=shop, timeout=300)
    assert result.returncode == 1, result.stderr
    results = json.loads((shop / "results.json").read_text())
    assert len(results) > 10 and all(r["status"] == "confirmed" for r in results)
    report = shop / "report.html"
    assert_self_contained(report.read_text())

    dom = _chromium(shop, "--dump-dom", report.as_uri())
    drawn = sections(dom)  # as Chromium parsed it
    assert len(drawn) == len(results)
    for section, result in zip(drawn, results):
        assert section["graphs"] == 1 and section["code"] == result["code"]
        flagged = [n for n in section["nodes"] if n["data-flagged"] == "true"]
        assert len(flagged) == 1 and "flagged" in flagged[0]["class"].split()
        observed = {node["role"]: node.get("state") for node in result["evidence"]["nodes"]}
        assert {n["data-role"]: n["data-state"] for n in section["nodes"]} == observed
        failed = [n for n in section["nodes"] if n["data-state"] == "FAILURE"]
        assert not any(s == "FAILURE" for s in observed.values()) or failed
    assert "TypeError: log_done() takes 1 positional argument but 2 were given" in dom

    screenshot = shop / "report.png"
    _chromium(shop, f"--screenshot={screenshot}", "--window-size=1200,1600", report.as_uri())
    data = screenshot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 1600)


def _chromium(cwd: Path, *args: str) -> str:
    profile = cwd / "chromium-profile"
    result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                             "--hide-scrollbars", f"--user-data-dir={profile}",
                             "--no-first-run", "--disable-extensions", *args],
                            cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout
