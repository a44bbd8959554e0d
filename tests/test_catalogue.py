from __future__ import annotations

from pathlib import Path

import pytest

from roots.core.errors import UserError
from roots.governance import catalogue


def add(run_cli, ws, name="demo", extra=(), path="data/d.jsonl", fmt="jsonl", lic="CC-BY-4.0",
        custodian="Example Library"):
    args = ["--workspace", str(ws.root), "source", "add", name, "--path", path, "--format", fmt]
    if lic is not None:
        args += ["--license", lic]
    if custodian is not None:
        args += ["--custodian", custodian]
    return run_cli(*args, *extra)


def test_add_list_show_validate(run_cli, ws):
    rc, out, _ = add(run_cli, ws, "news_fr", ["--language", "fr", "--description", "French news"])
    assert rc == 0 and "registered source news_fr" in out
    assert (ws.sources_dir / "news_fr.yaml").exists()
    rc, out, _ = run_cli("--workspace", str(ws.root), "source", "list")
    assert rc == 0 and "news_fr" in out and "CC-BY-4.0" in out and "fr" in out
    rc, out, _ = run_cli("source", "show", "news_fr", "--workspace", str(ws.root))
    assert rc == 0 and "custodian:" in out and "French news" in out
    rc, out, _ = run_cli("--workspace", str(ws.root), "source", "validate")
    assert rc == 0 and "1 source card(s) valid" in out


def test_workspace_from_environment(run_cli, ws, monkeypatch):
    monkeypatch.setenv("ROOTS_WORKSPACE", str(ws.root))
    rc, _, _ = add(run_cli, ws, "envsrc")
    assert rc == 0
    rc, out, _ = run_cli("source", "list")
    assert "envsrc" in out


def test_not_a_workspace(run_cli, tmp_path):
    rc, _, err = run_cli("--workspace", str(tmp_path), "source", "list")
    assert rc == 2 and "not a roots workspace" in err and "roots init" in err


@pytest.mark.parametrize(
    ("kwargs", "extra", "needle"),
    [
        ({"fmt": "xml"}, [], "data.format"),
        ({"lic": ""}, [], "license"),
        ({"custodian": ""}, [], "custodian.name"),
        ({"name": "a/b"}, [], "field `name`"),
        ({"name": ".."}, [], "field `name`"),
        ({"path": "../outside/data.jsonl"}, [], "climbs out of the workspace"),
        ({"lic": "LicenseRef-custom"}, [], "license_text"),
        ({}, ["--language", "English"], "languages"),
    ],
)
def test_add_rejections(run_cli, ws, kwargs, extra, needle):
    rc, _, err = add(run_cli, ws, extra=extra, **kwargs)
    assert rc == 2, err
    assert needle in err and "Fix:" in err and "Traceback" not in err
    assert not list(ws.sources_dir.glob("*.yaml"))


def test_missing_required_options_are_usage_errors(run_cli, ws):
    with pytest.raises(SystemExit) as exc:
        add(run_cli, ws, lic=None)
    assert exc.value.code == 2


def test_absolute_paths_and_uris_are_fine(run_cli, ws):
    assert add(run_cli, ws, "abs", path="/data/corpus/*.jsonl")[0] == 0
    assert add(run_cli, ws, "gcs", path="gs://bucket/corpus/*.parquet", fmt="parquet")[0] == 0


def test_duplicate_names_rejected(run_cli, ws):
    assert add(run_cli, ws, "dup")[0] == 0
    rc, _, err = add(run_cli, ws, "dup")
    assert rc == 2 and "already registered" in err
    # a hand-made second card with the same name is caught by validate
    text = (ws.sources_dir / "dup.yaml").read_text()
    (ws.sources_dir / "Dup.yml").write_text(text.replace("name: dup", "name: Dup"))
    (ws.sources_dir / "other.yaml").write_text(text.replace("name: dup", "name: DUP"))
    rc, _, err = run_cli("--workspace", str(ws.root), "source", "validate")
    assert rc == 2 and "duplicate source name" in err


def test_validate_reports_every_problem_with_file_and_field(run_cli, ws):
    (ws.sources_dir / "broken.yaml").write_text(
        "name: broken\nlanguages: [en]\nstatus: {state: killed}\ndata: {path: x, format: docx}\n")
    rc, _, err = run_cli("--workspace", str(ws.root), "source", "validate")
    assert rc == 2
    for needle in ("broken.yaml", "license", "custodian", "data.format", "status", "reason"):
        assert needle in err, needle


def test_bad_yaml_reports_line(run_cli, ws):
    (ws.sources_dir / "bad.yaml").write_text("name: bad\nlanguages: [en\ncustodian: x\n")
    rc, _, err = run_cli("--workspace", str(ws.root), "source", "validate")
    assert rc == 2 and "bad.yaml" in err and "line" in err


def test_yaml_safe_loader_only(ws):
    (ws.sources_dir / "evil.yaml").write_text("name: !!python/object/apply:os.system ['echo hacked']\n")
    cards, problems = catalogue.validate_all(ws)
    assert not cards and problems and "invalid YAML" in str(problems[0])


def test_unknown_source(run_cli, ws):
    rc, _, err = run_cli("--workspace", str(ws.root), "source", "show", "nope")
    assert rc == 2 and "unknown source 'nope'" in err


def test_killed_card_loads(ws):
    (ws.sources_dir / "old.yaml").write_text(
        "name: old\nlanguages: [fr]\nlicense: CC0-1.0\ncustodian: {name: BnL}\n"
        "data: {path: x.jsonl, format: jsonl}\nstatus: {state: killed, reason: bad quality}\n")
    card = catalogue.load_card(ws, "old")
    assert not card.active and card.killed_reason == "bad quality"


def test_load_card_rejects_invalid(ws):
    (ws.sources_dir / "x.yaml").write_text("name: y\n")
    with pytest.raises(UserError) as exc:
        catalogue.load_card(ws, "x")
    assert "differs from its file name" in str(exc.value)


def test_data_location(ws, run_cli):
    add(run_cli, ws, "rel", path="data/*.jsonl")
    card = catalogue.load_card(ws, "rel")
    assert card.data_location(ws) == str(Path(ws.root) / "data/*.jsonl")
