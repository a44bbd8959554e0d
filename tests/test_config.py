"""roots.yaml as dataclasses (roots/core/config.py): unknown keys and wrong types are user errors naming the
file, section and key; every default is defined once and is what `roots init` writes and what a run uses."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest
import yaml

from roots.core import workspace
from roots.core.config import (
    CodeConfig,
    LangidConfig,
    NormaliseConfig,
    PiiConfig,
    WorkspaceConfig,
    initial_config,
)
from roots.core.errors import UserError
from roots.core.util import library_versions
from roots.governance import catalogue
from roots.jobs import run
from roots.stages import normalise, pii, process
from tests.conftest import write_card

SECTIONS = [(None, WorkspaceConfig), ("langid", LangidConfig), ("normalise", NormaliseConfig),
            ("pii", PiiConfig), ("code", CodeConfig)]


def write_config(ws: workspace.Workspace, text: str) -> None:
    ws.config_path.write_text(text, encoding="utf-8")


def with_source(ws: workspace.Workspace, name: str = "src") -> catalogue.Card:
    doc = {"text": "A short document for the configuration tests."}
    (ws.root / "d.jsonl").write_text(json.dumps(doc) + "\n")
    write_card(ws, name, "d.jsonl")
    return catalogue.load_card(ws, name)


@pytest.mark.parametrize(("section", "cls"), SECTIONS)
def test_unknown_key_in_each_section_names_file_section_key_and_valid_keys(ws, section, cls):
    write_config(ws, yaml.safe_dump({section: {"bogus_key": 1}} if section else {"bogus_key": 1}))
    with pytest.raises(UserError) as err:
        ws.settings()
    message = str(err.value)
    assert str(ws.config_path) in message and "`bogus_key`" in message
    assert (f"section `{section}`" if section else "top level") in message
    assert "valid keys are: " + ", ".join(f.name for f in fields(cls)) in message


def test_misspelt_key_is_not_silently_ignored(ws):
    write_config(ws, "langid:\n  batch_sise: 64\n")
    with pytest.raises(UserError, match=r"section `langid`: unknown key `batch_sise`; valid keys are: model, "
                                        r"batch_size, routing"):
        ws.settings()


@pytest.mark.parametrize(("text", "key", "expected"), [
    ("langid: {batch_size: big}", "langid.batch_size", "a whole number >= 1"),
    ("langid: {batch_size: 0}", "langid.batch_size", "a whole number >= 1"),
    ("langid: {batch_size: true}", "langid.batch_size", "a whole number >= 1"),
    ("langid: {model: 3}", "langid.model", "a non-empty string"),
    ("normalise: {max_chars: 1.5e6}", "normalise.max_chars", "a whole number >= 0"),
    ("normalise: {max_chars: -1}", "normalise.max_chars", "a whole number >= 0"),
    ("pii: {tags: EMAIL}", "pii.tags", "a list of names"),
    ("pii: {tags: [EMAIL, 3]}", "pii.tags", "a list of names"),
    ("code: {languages: [a, b]}", "code.languages", "a non-empty string, or null"),
    ("runs_dir: [a]", "runs_dir", "a non-empty string"),
    ("shards: many", "shards", "a whole number >= 0, or null"),
    ("thresholds: {en: 3}", "thresholds", "a mapping of language"),
    ("dedup: [near]", "dedup", "a mapping of settings"),
])
def test_wrong_type_says_what_is_expected(ws, text, key, expected):
    write_config(ws, text + "\n")
    with pytest.raises(UserError) as err:
        ws.settings()
    message = str(err.value)
    assert str(ws.config_path) in message and f"`{key}` must be {expected}" in message, message


@pytest.mark.parametrize("text", ["langid: [model]\n", "pii: EMAIL\n", "- a\n- b\n"])
def test_a_section_that_is_not_a_mapping(ws, text):
    write_config(ws, text)
    with pytest.raises(UserError, match="must be a mapping of settings"):
        ws.settings()


def test_unknown_key_is_a_user_error_from_the_cli(ws, run_cli):
    with_source(ws)
    write_config(ws, "normalise:\n  max_char: 10\n")
    rc, _, err = run_cli("--workspace", str(ws.root), "run", "src")
    assert rc == 2
    assert "Traceback" not in err
    assert "roots: error:" in err and "`max_char`" in err and "valid keys are: max_chars" in err


def test_init_writes_the_defaults_and_no_pii_tag_list(ws):
    written = yaml.safe_load(ws.config_path.read_text(encoding="utf-8"))
    assert written == initial_config()
    assert "pii" not in written  # the tag list is not frozen into new workspaces
    assert written["langid"] == {"model": LangidConfig().model, "batch_size": LangidConfig().batch_size}
    assert written["normalise"] == {"max_chars": NormaliseConfig().max_chars, "unicode": True}
    assert ws.settings() == WorkspaceConfig()
    # a workspace without roots.yaml (the repository itself) gets the same settings
    ws.config_path.unlink()
    assert ws.settings() == WorkspaceConfig()
    assert ws.config()["langid"]["batch_size"] == 512


def test_config_round_trips_through_yaml(ws):
    write_config(ws, "pii: {tags: [EMAIL]}\nshards: 3\nmerge: {valid_fraction: 0.5}\n")
    settings = ws.settings()
    write_config(ws, yaml.safe_dump(ws.config()))
    assert ws.settings() == settings


def test_defaults_are_defined_once():
    assert normalise.DEFAULT_MAX_CHARS == NormaliseConfig().max_chars
    assert process.ProcessConfig(source="x").max_chars == NormaliseConfig().max_chars
    assert PiiConfig().tags is None  # every tag: resolved by the run from roots.stages.pii.TAGS


def test_run_uses_the_configured_defaults(ws):
    card = with_source(ws)
    cfg = run.process_config(ws, card)
    assert cfg.max_chars == NormaliseConfig().max_chars == 1_000_000
    assert cfg.langid_model == LangidConfig().model
    assert cfg.langid_routing is None
    assert cfg.pii_tags == pii.TAGS
    p = run.plan(ws, "src")
    assert p.batch_size == LangidConfig().batch_size == 512


def test_configured_values_reach_the_run(ws):
    card = with_source(ws)
    write_config(ws, "langid: {batch_size: 64}\nnormalise: {max_chars: 500}\npii: {tags: [EMAIL, PHONE]}\n")
    cfg = run.process_config(ws, card)
    assert (cfg.max_chars, cfg.pii_tags) == (500, ("EMAIL", "PHONE"))
    assert run.plan(ws, "src").batch_size == 64


def test_a_roots_yaml_listing_every_tag_keeps_its_hash(ws):
    """Workspaces made before the tag list moved out of roots.yaml list all seven: same configuration."""
    with_source(ws)
    before = run.plan(ws, "src").config_hash
    write_config(ws, yaml.safe_dump({**initial_config(), "pii": {"tags": list(pii.TAGS)}}))
    assert run.plan(ws, "src").config_hash == before


def test_unknown_pii_tag_names_where_it_was_set(ws):
    card = with_source(ws)
    write_config(ws, "pii: {tags: [EMAIL, PASSPORT]}\n")
    with pytest.raises(UserError, match=r"roots\.yaml: `pii.tags`: unknown PII tag\(s\) PASSPORT"):
        run.process_config(ws, card)


def test_unknown_dedup_setting_in_roots_yaml_names_roots_yaml(ws):
    card = with_source(ws)
    write_config(ws, "dedup: {treshold: 0.5}\n")
    with pytest.raises(UserError, match=r"roots\.yaml: section `dedup`: unknown setting\(s\) treshold"):
        run.dedup_config(ws, card)


def test_library_versions_module_version_or_unknown():
    import kenlm

    versions = library_versions(["yaml", "kenlm", "no_such_module_here"])
    assert versions["yaml"] == yaml.__version__
    # kenlm has no __version__: "unknown", what run manifests were hashed with
    assert versions["kenlm"] == getattr(kenlm, "__version__", "unknown")
    assert versions["no_such_module_here"] is None
    assert {"roots", "python"} <= set(versions)
