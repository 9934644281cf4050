"""``celery-chain-lint server`` in a real LSP session over standard input and output: the
diagnostics of an open buffer are those ``check --format json`` reports for the same file, a
code action's edit fixes the finding, ``# noqa`` is offered, hover explains the rule."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from celery_chain_lint.fixes import fixer
from celery_chain_lint.facts.ir import Span
from celery_chain_lint.findings import Edit, Fix
from hostile_helpers import ROOT, run_cli
from lsp_client import LspClient

pytest.importorskip("pygls", reason="the server needs pygls (the lsp and test extras)")


@pytest.fixture
def shop(tmp_path):
    shutil.copytree(ROOT / "fixtures" / "shop", tmp_path / "shop",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


@pytest.fixture
def session(shop):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    client = LspClient([sys.executable, "-m", "celery_chain_lint", "server"], cwd=shop, env=env)
    try:
        capabilities = client.request("initialize", {"processId": os.getpid(),
                                                     "rootUri": shop.as_uri(),
                                                     "capabilities": {}})["capabilities"]
        assert capabilities["codeActionProvider"] and capabilities["hoverProvider"]
        client.notify("initialized", {})
        yield client
    finally:
        if client.process.poll() is None:
            assert client.close() == 0


def open_document(client: LspClient, path: Path) -> list:
    text = path.read_text()
    client.notify("textDocument/didOpen", {"textDocument": {
        "uri": path.as_uri(), "languageId": "python", "version": 1, "text": text}})
    return published(client, path)


def published(client: LspClient, path: Path) -> list:
    return client.notification("textDocument/publishDiagnostics",
                               lambda params: params["uri"] == path.as_uri())["diagnostics"]


def as_check_reports(diagnostic: dict) -> tuple:
    start, end = diagnostic["range"]["start"], diagnostic["range"]["end"]
    return (diagnostic["code"], start["line"] + 1, start["character"] + 1, end["line"] + 1,
            end["character"] + 1, diagnostic["message"])


def apply_edits(text: str, edits: list) -> str:
    """LSP text edits applied to ``text`` (ASCII here: UTF-16 units are characters)."""
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(position):
        return starts[position["line"]] + position["character"]

    for edit in sorted(edits, key=lambda e: offset(e["range"]["start"]), reverse=True):
        text = (text[:offset(edit["range"]["start"])] + edit["newText"]
                + text[offset(edit["range"]["end"]):])
    return text


def test_diagnostics_are_those_of_check_and_a_code_action_fixes(shop, session):
    path = shop / "shop" / "checkout.py"
    result = run_cli("check", "--format", "json", "--no-cache", "shop/checkout.py", cwd=shop)
    expected = json.loads(result.stdout)
    assert result.returncode == 1 and len(expected) > 1

    diagnostics = open_document(session, path)
    assert sorted(map(as_check_reports, diagnostics)) == sorted(
        (f["code"], f["line"], f["column"], f["end_line"], f["end_column"], f["message"])
        for f in expected)
    assert {d["source"] for d in diagnostics} == {"celery-chain-lint"}

    target = next(d for d in diagnostics if d["code"] == "CCL001")
    finding = next(f for f in expected if (f["line"], f["column"]) == (
        target["range"]["start"]["line"] + 1, target["range"]["start"]["character"] + 1))
    actions = session.request("textDocument/codeAction", {
        "textDocument": {"uri": path.as_uri()}, "range": target["range"],
        "context": {"diagnostics": [target]}})
    fix, noqa = actions[0], actions[-1]
    assert fix["title"] == f"CCL001: {finding['fix']['message']}" and fix["isPreferred"]
    assert noqa["title"] == "CCL001: ignore on this line (# noqa: CCL001)"

    text = path.read_text()
    fixed = apply_edits(text, fix["edit"]["changes"][path.as_uri()])
    assert fixed == fixer.apply_fixes(text, [as_fix(finding["fix"])])[0] != text
    session.notify("textDocument/didChange", {
        "textDocument": {"uri": path.as_uri(), "version": 2},
        "contentChanges": [{"text": fixed}]})
    after = published(session, path)  # the buffer, not the file on disk (still unfixed)
    assert sorted(map(as_check_reports, after)) == sorted(
        as_check_reports(d) for d in diagnostics if d is not target)

    ignored = apply_edits(text, noqa["edit"]["changes"][path.as_uri()])
    line = ignored.splitlines()[target["range"]["start"]["line"]]
    assert line.endswith("# noqa: CCL001")


def as_fix(data: dict) -> Fix:
    return Fix(data["message"], tuple(
        Edit(Span(e["location"]["row"], e["location"]["column"], e["end_location"]["row"],
                  e["end_location"]["column"]), e["content"]) for e in data["edits"]),
        data["applicability"])


def test_hover_on_a_diagnostic_shows_the_rule_page(shop, session):
    path = shop / "shop" / "checkout.py"
    target = next(d for d in open_document(session, path) if d["code"] == "CCL001")
    hover = session.request("textDocument/hover", {"textDocument": {"uri": path.as_uri()},
                                                   "position": target["range"]["start"]})
    explained = run_cli("explain", "CCL001", cwd=shop).stdout.decode()
    assert hover["contents"]["kind"] == "markdown"
    assert hover["contents"]["value"] == explained.rstrip("\n")
    nothing = session.request("textDocument/hover", {"textDocument": {"uri": path.as_uri()},
                                                     "position": {"line": 0, "character": 0}})
    assert nothing is None


def test_an_unsaved_new_file_is_analysed_with_its_package(shop, session):
    """A buffer never saved: its imports resolve against the package it will be part of."""
    path = shop / "shop" / "draft.py"
    text = ("from celery import chain\nfrom shop.tasks.mail import log_done\n"
            "from shop.tasks.billing import add\n\n"
            "chain(add.s(1, 2), log_done.s('x')).delay()\n")
    session.notify("textDocument/didOpen", {"textDocument": {
        "uri": path.as_uri(), "languageId": "python", "version": 1, "text": text}})
    assert [d["code"] for d in published(session, path)] == ["CCL001"]
    assert not path.exists()
