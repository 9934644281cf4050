"""[tool.celery-chain-lint]: discovery, every key, precedence of the command line, errors."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from celery_chain_lint.config import files as config
from celery_chain_lint.config.files import ConfigError
from ccl_cli import APP, BAD_LINE, codes_at, run, write

TWO_CODES = APP + BAD_LINE + "add.s(1).delay()\n"  # CCL001 on line 14, CCL002 on line 15


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"app/__init__.py": "", "app/flows.py": TWO_CODES})
    return tmp_path


def pyproject(root: Path, body: str) -> None:
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n\n[tool.celery-chain-lint]\n" + body)


def test_no_configuration_reports_every_rule(project):
    assert codes_at("app") == [("app/flows.py", 14, "CCL001"), ("app/flows.py", 15, "CCL002")]


def test_select_and_ignore_from_pyproject(project):
    pyproject(project, 'select = ["CCL001"]\n')
    assert codes_at("app") == [("app/flows.py", 14, "CCL001")]
    pyproject(project, 'ignore = ["CCL001"]\n')
    assert codes_at("app") == [("app/flows.py", 15, "CCL002")]


def test_found_by_walking_up_from_the_analysed_paths(project, tmp_path, monkeypatch):
    pyproject(project, 'ignore = ["CCL002"]\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    found = codes_at(project / "app" / "flows.py")
    assert [code for _, _, code in found] == ["CCL001"]


def test_pyproject_without_the_table_is_skipped(project):
    (project / "app" / "pyproject.toml").write_text("[project]\nname = 'inner'\n")
    pyproject(project, 'ignore = ["CCL002"]\n')
    assert config.find_config(["app"]) == str(project / "pyproject.toml")


def test_standalone_file_wins_in_its_directory(project):
    pyproject(project, 'ignore = ["CCL002"]\n')
    (project / "celery-chain-lint.toml").write_text('ignore = ["CCL001"]\n')
    assert [c for _, _, c in codes_at("app")] == ["CCL002"]


def test_explicit_config_and_isolated(project, tmp_path):
    pyproject(project, 'ignore = ["CCL002"]\n')
    other = tmp_path / "other.toml"
    other.write_text('ignore = ["CCL001"]\n')
    assert [c for _, _, c in codes_at("app", "--config", other)] == ["CCL002"]
    assert [c for _, _, c in codes_at("app", "--isolated")] == ["CCL001", "CCL002"]


def test_command_line_overrides_the_file(project):
    pyproject(project, 'select = ["CCL001"]\n')
    # --select replaces the file's selection; --extend-select and --ignore layer on top.
    assert [c for _, _, c in codes_at("app", "--select", "CCL002")] == ["CCL002"]
    assert [c for _, _, c in codes_at("app", "--extend-select", "CCL002")] == ["CCL001", "CCL002"]
    pyproject(project, 'ignore = ["CCL002"]\n')
    assert [c for _, _, c in codes_at("app", "--extend-select", "CCL002")] == ["CCL001", "CCL002"]
    assert codes_at("app", "--ignore", "CCL001") == []


def test_extend_select_adds_to_the_default_selection(project):
    pyproject(project, 'extend-select = ["CCL998"]\n')
    assert [c for _, _, c in codes_at("app")] == ["CCL001", "CCL002"]


def test_per_file_ignores(project):
    write(project, {"app/other.py": "from app.flows import add\nadd.s(1).delay()\n"})
    pyproject(project, '[tool.celery-chain-lint.per-file-ignores]\n"flows.py" = ["CCL001"]\n'
                       '"app/o*.py" = ["CCL00"]\n')
    assert codes_at("app") == [("app/flows.py", 15, "CCL002")]


def test_per_file_ignores_negated_and_from_the_command_line(project):
    write(project, {"app/other.py": "from app.flows import add\nadd.s(1).delay()\n"})
    pyproject(project, '[tool.celery-chain-lint.per-file-ignores]\n"!app/flows.py" = ["CCL002"]\n')
    assert codes_at("app") == [("app/flows.py", 14, "CCL001"), ("app/flows.py", 15, "CCL002")]
    assert codes_at("app", "--per-file-ignores", "flows.py:CCL001,CCL002") == [
        ("app/other.py", 2, "CCL002")]
    assert codes_at("app", "--extend-per-file-ignores", "app/*:CCL001") == [
        ("app/flows.py", 15, "CCL002")]


def test_exclude_extend_exclude_and_defaults(project):
    write(project, {"app/generated/__init__.py": "", "app/generated/gen.py": TWO_CODES,
                    "app/build/x.py": TWO_CODES, "legacy_one.py": TWO_CODES})
    assert {p for p, _, _ in codes_at(".")} == {"app/flows.py", "app/generated/gen.py",
                                                "legacy_one.py"}  # build/ is a default exclude
    pyproject(project, 'extend-exclude = ["generated", "legacy_*.py"]\n')
    assert {p for p, _, _ in codes_at(".")} == {"app/flows.py"}
    pyproject(project, 'exclude = ["app/flows.py"]\n')  # replaces the defaults
    assert {p for p, _, _ in codes_at(".")} == {"app/generated/gen.py", "app/build/x.py",
                                                "legacy_one.py"}
    assert {p for p, _, _ in codes_at(".", "--exclude", "gen*,build,legacy*")} == {"app/flows.py"}


def test_explicit_paths_are_analysed_unless_force_exclude(project):
    pyproject(project, 'extend-exclude = ["flows.py"]\n')
    assert codes_at("app/flows.py")
    assert codes_at("app/flows.py", "--force-exclude") == []
    pyproject(project, 'extend-exclude = ["flows.py"]\nforce-exclude = true\n')
    assert codes_at("app/flows.py") == []


def test_gitignore_respected_by_default(project):
    os.mkdir(project / ".git")
    write(project, {".gitignore": "ignored/\n*_gen.py\n!keep_gen.py\n",
                    "ignored/bad.py": TWO_CODES, "x_gen.py": TWO_CODES, "keep_gen.py": TWO_CODES,
                    "app/.gitignore": "flows.py\n"})
    assert {p for p, _, _ in codes_at(".")} == {"keep_gen.py"}
    assert {p for p, _, _ in codes_at(".", "--no-respect-gitignore")} == {
        "keep_gen.py", "x_gen.py", "ignored/bad.py", "app/flows.py"}
    pyproject(project, "respect-gitignore = false\n")
    assert len({p for p, _, _ in codes_at(".")}) == 4
    assert {p for p, _, _ in codes_at(".", "--respect-gitignore")} == {"keep_gen.py"}


def test_gitignore_needs_a_repository(project):
    write(project, {".gitignore": "app/\n"})
    assert codes_at(".")  # not a git repository: .gitignore means nothing, as git


def test_src_roots_name_modules(project):
    write(project, {"src/shop/__init__.py": "", "src/shop/tasks.py": APP,
                    "src/shop/flows.py": "from shop.tasks import add\nadd.s(1).delay()\n"})
    pyproject(project, 'src = ["src"]\n')
    assert ("src/shop/flows.py", 2, "CCL002") in codes_at("src")


@pytest.mark.parametrize("body, message", [
    ('selekt = ["CCL001"]\n', "unknown key 'selekt' in [tool.celery-chain-lint] (did you mean 'select'?)"),
    ('select = ["CCL777"]\n', "unknown rule code in 'select': CCL777"),
    ('ignore = "CCL001"\n', "'ignore' must be a list of strings, not a string ('CCL001')"),
    ('respect-gitignore = "no"\n', "'respect-gitignore' must be true or false"),
    ('[tool.celery-chain-lint.per-file-ignores]\n"x.py" = ["XYZ1"]\n',
     "unknown rule code in 'per-file-ignores.\"x.py\"': XYZ1"),
    ('[tool.celery-chain-lint.no-such-rule]\nfoo = 1\n', "unknown key 'no-such-rule'"),
    ('[tool.celery-chain-lint.result-not-accepted]\nfoo = 1\n',
     "unknown option 'foo' in [tool.celery-chain-lint.result-not-accepted]"),
    ('[tool.celery-chain-lint.CCL001]\nfoo = 1\n',
     "per-rule options are keyed by rule name: [tool.celery-chain-lint.result-not-accepted]"),
    ('select = [\n', "invalid TOML"),
])
def test_configuration_errors_name_the_key_and_the_file(project, body, message):
    pyproject(project, body)
    result = run("check", "app")
    assert result.exit_code == 2
    assert str(project / "pyproject.toml") in result.stderr
    assert message in result.stderr, result.stderr


def test_unknown_codes_on_the_command_line(project):
    result = run("check", "app", "--select", "CCL777")
    assert result.exit_code == 2 and "CCL777" in result.stderr
    assert run("check", "app", "--config", "missing.toml").exit_code == 2


def test_rule_options_reach_the_rules(project, monkeypatch):
    from celery_chain_lint.rules import ALL_RULES
    from celery_chain_lint.rules.ccl001_result_not_accepted import ResultNotAccepted

    monkeypatch.setattr(ResultNotAccepted, "options", {"threshold": 3, "modules": ["a"],
                                                        "strict": False})
    pyproject(project, '[tool.celery-chain-lint.result-not-accepted]\nthreshold = 5\n'
                       'modules = ["x.y"]\n')
    settings = config.resolve(["app"])
    assert settings.rule_options == {"result-not-accepted": {"threshold": 5, "modules": ["x.y"]}}
    rule = ResultNotAccepted(settings)
    assert (rule.option("threshold"), rule.option("modules"), rule.option("strict")) == \
        (5, ["x.y"], False)
    assert ResultNotAccepted().option("threshold") == 3
    pyproject(project, '[tool.celery-chain-lint.result-not-accepted]\nthreshold = "5"\n')
    with pytest.raises(ConfigError, match="'result-not-accepted.threshold' must be an integer"):
        config.resolve(["app"])
    assert ResultNotAccepted in ALL_RULES



def test_rule_codes_known_without_importing_the_rules_match_the_rules():
    from celery_chain_lint import rules

    assert list(rules.RULE_CODES) == [rule.code for rule in rules.ALL_RULES]
