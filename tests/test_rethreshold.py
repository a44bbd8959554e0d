"""`roots run --rethreshold` gives the same outputs as a full run with the new thresholds."""

from __future__ import annotations

import json

from roots.io import outputs
from tests.conftest import udhr_paragraphs, write_card

COLUMNS_DECIDED = ("id", "lang", "status", "reason", "detail", "cluster", "text", "number_words",
                   "perplexity")


def rows(out, kind):
    return sorted(({k: r.get(k) for k in COLUMNS_DECIDED if k in r}
                   for r in outputs.read_kind(out, kind).to_pylist()), key=lambda r: r["id"])


def test_rethreshold_equals_full_run(ws, run_cli):
    en, fr = udhr_paragraphs("en", 5, min_words=30), udhr_paragraphs("fr", 3, min_words=30)
    docs = [{"id": f"en{i}", "text": t} for i, t in enumerate(en)] + [{"id": f"fr{i}", "text": t}
                                                                        for i, t in enumerate(fr)]
    docs += [{"id": "short-en", "text": "All human beings are born free and equal in dignity."},
             {"id": "short-fr", "text": "Tous les êtres humains naissent libres et égaux."},
             {"id": "de", "text": udhr_paragraphs("de", 1)[0]}]
    (ws.root / "d.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    write_card(ws, "src", "d.jsonl", languages="[en, fr]", data_extra=", id_field: id")
    assert run_cli("--workspace", str(ws.root), "run", "src")[0] == 0
    before = {r["id"] for r in rows(ws.root / "runs" / "src", "kept")}
    assert "short-en" not in before and "en0" in before
    # loosen the word count (admits the short documents) and tighten stop words for English
    (ws.root / "roots.yaml").write_text(
        "thresholds:\n  en: {number_words_min: 3, stopwords_min: 0.6}\n  fr: {number_words_min: 3}\n")
    rc, out, err = run_cli("--workspace", str(ws.root), "run", "src", "--rethreshold")
    assert rc == 0, err
    assert "changed outcome" in out
    assert run_cli("--workspace", str(ws.root), "run", "src", "--out", str(ws.root / "full"))[0] == 0
    re_dir, full_dir = ws.root / "runs" / "src", ws.root / "full"
    for kind in ("kept", "rejected"):
        assert rows(re_dir, kind) == rows(full_dir, kind), kind
    kept_ids = {r["id"] for r in rows(re_dir, "kept")}
    assert {"short-en", "short-fr"} <= kept_ids
    assert any(r["reason"] == "stopwords" for r in rows(re_dir, "rejected"))
    stats = json.loads((re_dir / "stats.json").read_text())
    full_stats = json.loads((full_dir / "stats.json").read_text())
    assert stats["documents"] == full_stats["documents"] and stats["reasons"] == full_stats["reasons"]
    assert stats["rethreshold"]["changed"] >= 3
    sigs = {r["id"] for r in outputs.read_kind(re_dir, "signatures").to_pylist()}
    assert sigs == kept_ids


def test_rethreshold_needs_a_finished_run(ws, run_cli):
    (ws.root / "d.jsonl").write_text(json.dumps({"text": "x"}) + "\n")
    write_card(ws, "never", "d.jsonl")
    rc, _, err = run_cli("--workspace", str(ws.root), "run", "never", "--rethreshold")
    assert rc == 2 and "no finished run" in err


def test_rethreshold_does_not_revive_duplicates(ws, run_cli):
    """A page and its exact mirror, and a near copy of a kept page, all rejected by a filter so that dedup
    never paired them: relaxing the threshold admits one copy of each, as a full run would."""
    en = udhr_paragraphs("en", 4, min_words=30)
    short = "All human beings are born free and equal in dignity and rights."
    near = en[0] + " Amen."  # a kept page plus two words: near duplicate, not exact
    docs = [{"id": f"en{i}", "text": t} for i, t in enumerate(en)]
    docs += [{"id": "page", "text": short}, {"id": "page-mirror", "text": short},
             {"id": "zz-near", "text": near}]
    (ws.root / "d.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    write_card(ws, "src", "d.jsonl", languages="[en]", data_extra=", id_field: id",
               extra="recipe: {thresholds: {en: {special_characters_max: 0.02}}}\n")
    assert run_cli("--workspace", str(ws.root), "run", "src")[0] == 0
    first = {r["id"]: r for r in rows(ws.root / "runs" / "src", "rejected")}
    assert first["page"]["reason"] == first["page-mirror"]["reason"] != "duplicate"  # a filter, not dedup
    assert first["zz-near"]["reason"] != "duplicate"
    card = ws.sources_dir / "src.yaml"
    card.write_text(card.read_text().replace("special_characters_max: 0.02", "special_characters_max: 0.5")
                    .replace("{en: {", "{en: {number_words_min: 3, "))
    rc, _, err = run_cli("--workspace", str(ws.root), "run", "src", "--rethreshold")
    assert rc == 0, err
    re_dir = ws.root / "runs" / "src"
    kept = {r["id"] for r in rows(re_dir, "kept")}
    rejected = {r["id"]: r for r in rows(re_dir, "rejected")}
    assert "page" in kept and "page-mirror" not in kept  # lowest id keeps
    assert rejected["page-mirror"]["reason"] == "duplicate"
    assert rejected["page-mirror"]["detail"] == "duplicate of page (exact)"
    assert rejected["zz-near"]["detail"] == "duplicate of en0 (near)" and "en0" in kept
    texts = [r["text"] for r in rows(re_dir, "kept")]
    assert len(texts) == len(set(texts))  # no exact duplicate text in kept/
    # the same decisions as a full run with the new thresholds
    assert run_cli("--workspace", str(ws.root), "run", "src", "--out", str(ws.root / "full"))[0] == 0
    full_kept = {r["id"] for r in rows(ws.root / "full", "kept")}
    assert kept == full_kept
    sigs = {r["id"] for r in outputs.read_kind(re_dir, "signatures").to_pylist()}
    assert sigs == kept
