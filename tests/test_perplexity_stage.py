"""The perplexity stage inside the per-source pipeline, with a tiny KenLM model trained by `roots lm
train`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from roots.io import outputs
from roots.jobs import train_lm
from roots.stages import perplexity
from tests.conftest import REPO, udhr_paragraphs, write_card

pytestmark = pytest.mark.skipif(
    not (train_lm.REPO_TOOLS_BIN / "lmplz").exists(),
    reason="lmplz not built; `make lmplz` builds it (make test always does)")


@pytest.fixture()
def trained(ws, run_cli):
    rc, out, err = run_cli("--workspace", str(ws.root), "lm", "train", "--lang", "en", "--corpus",
                           str(REPO / "roots" / "data" / "lm_reference" / "en.txt"), "--order", "3")
    assert rc == 0, err
    assert (ws.root / "models" / "lm" / "en" / "lm.binary").exists() and "held-out perplexity" in out
    return ws


def source(ws, thresholds: str = "") -> None:
    docs = [{"id": f"en{i}", "text": t} for i, t in enumerate(udhr_paragraphs("en", 3))]
    docs += [{"id": f"fr{i}", "text": t} for i, t in enumerate(udhr_paragraphs("fr", 2))]
    salad = " ".join(sorted(udhr_paragraphs("en", 1)[0].split(), key=lambda w: (len(w), w[::-1])))
    docs.append({"id": "salad", "text": salad})
    (ws.root / "d.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    recipe = (f"recipe: {{thresholds: {thresholds}, skip: [quality]}}\n" if thresholds
              else "recipe: {skip: [quality]}\n")
    write_card(ws, "ppl", "d.jsonl", languages="[en, fr]", extra=recipe, data_extra=", id_field: id")


def run(ws, run_cli) -> tuple[dict, dict, dict]:
    rc, _, err = run_cli("--workspace", str(ws.root), "run", "ppl")
    assert rc == 0, err
    out = ws.root / "runs" / "ppl"
    kept = {r["id"]: r for r in outputs.read_kind(out, "kept").to_pylist()}
    rejected = {r["id"]: r for r in outputs.read_kind(out, "rejected").to_pylist()}
    return kept, rejected, json.loads((out / "stats.json").read_text())


def test_scores_stored_and_languages_without_model_reported(trained, run_cli):
    source(trained)
    kept, rejected, stats = run(trained, run_cli)
    en = [r for r in kept.values() if r["lang"] == "en"]
    assert en and all(r["perplexity"] > 0 and r["ppl_status"] == "scored" for r in en)
    fr = [r for r in kept.values() if r["lang"] == "fr"]
    assert fr and all(r["perplexity"] is None and r["ppl_status"] == "no_model" for r in fr)
    assert any(note.startswith("fr:") for note in stats["notes"]["perplexity_not_filtered"])
    assert stats["languages"]["fr"]["perplexity"] == {"no_model": 2}
    # shuffled words score worse than the real text
    salad = kept.get("salad") or rejected["salad"]
    assert salad["perplexity"] > max(r["perplexity"] for r in en if r["id"] != "salad")


def test_absolute_threshold_rejects(trained, run_cli):
    source(trained, "{en: {ppl_max: 5.0}}")
    _, rejected, stats = run(trained, run_cli)
    assert {r["reason"] for r in rejected.values()} == {"perplexity"}
    assert all(r["lang"] == "en" for r in rejected.values()) and len(rejected) == 4
    assert "> max 5.0" in rejected["salad"]["detail"]
    assert stats["reasons"] == {"perplexity": 4}


def test_percentile_threshold(trained, run_cli):
    model = perplexity.PerplexityModel.load(trained.root / "models" / "lm" / "en")
    limit = model.percentile_threshold(60)
    source(trained, "{en: {ppl_percentile: 60}}")
    kept, rejected, _ = run(trained, run_cli)
    assert "salad" in rejected and f"> max {limit:.1f}" in rejected["salad"]["detail"]
    for r in kept.values():
        if r["lang"] == "en":
            assert r["perplexity"] <= limit


def test_lm_train_errors(ws, run_cli, tmp_path):
    rc, _, err = run_cli("--workspace", str(ws.root), "lm", "train", "--lang", "en",
                         "--corpus", str(tmp_path / "x"))
    assert rc == 2 and "x" in err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    rc, _, err = run_cli("--workspace", str(ws.root), "lm", "train", "--lang", "en", "--corpus", str(empty))
    assert rc == 2 and "empty" in err
    rc, _, err = run_cli("--workspace", str(ws.root), "lm", "train", "--lang", "English!",
                         "--corpus", str(empty))
    assert rc == 2


def test_lm_dir_is_workspace_setting(trained):
    assert Path(trained.path_setting("models_dir")) == trained.root / "models"
