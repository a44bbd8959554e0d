"""Issue 23: a trainable quality classifier, benchmark decontamination and annotate-only stages, through the
CLI on real text (the bundled UDHR)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roots.core import workspace
from roots.io import outputs
from roots.stages import decontam
from tests.conftest import REPO, udhr_paragraphs, write_card

BOILERPLATE = (
    "Click here to subscribe to our newsletter",
    "Accept all cookies",
    "Privacy Policy | Terms of Use | Contact us",
    "Share on Facebook Share on Twitter",
    "Copyright 2021 All rights reserved",
    "Sign in Register Forgot password?",
    "Home > News > Article",
    "Advertisement",
    "Read more >>",
    "Menu Search Login Cart (0)",
)


def shuffled(text: str, rng: random.Random) -> str:
    words = text.split()
    rng.shuffle(words)
    return " ".join(words)


def boilerplate_laden(text: str, rng: random.Random) -> str:
    words = text.split()
    return " ".join(
        f"{' '.join(words[i : i + 6])} {rng.choice(BOILERPLATE)}" for i in range(0, len(words), 6)
    )


def training_files(tmp: Path) -> tuple[Path, Path]:
    """Positive: the bundled English UDHR, a paragraph a line; negative: each line shuffled (odd lines) or
    cut up with web boilerplate (even lines), one negative per positive."""
    lines = [
        x for x in (REPO / "roots/data/lm_reference/en.txt").read_text("utf-8").splitlines() if x.strip()
    ]
    rng = random.Random(1)
    negative = [shuffled(x, rng) if i % 2 == 0 else boilerplate_laden(x, rng) for i, x in enumerate(lines)]
    pos, neg = tmp / "pos.txt", tmp / "neg.txt"
    pos.write_text("\n".join(lines) + "\n", "utf-8")
    neg.write_text("\n".join(negative) + "\n", "utf-8")
    return pos, neg


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A workspace with the classifier `udhr` trained and a source of real and degraded UDHR pages."""
    from roots.cli import app

    root = tmp_path_factory.mktemp("signals")
    ws = workspace.init(root / "ws")
    pos, neg = training_files(root)
    assert (
        app.main(
            [
                "--workspace",
                str(ws.root),
                "classifier",
                "train",
                "udhr",
                "--positive",
                str(pos),
                "--negative",
                str(neg),
                "--lang",
                "en",
                "--holdout",
                "0.2",
            ]
        )
        == 0
    )
    rng = random.Random(7)
    en = udhr_paragraphs("en", 14, min_words=60)
    docs = [{"id": f"real{i:02d}", "text": t} for i, t in enumerate(en[:8])]
    docs += [{"id": f"shuf{i:02d}", "text": shuffled(t, rng)} for i, t in enumerate(en[8:11])]
    docs += [{"id": f"boil{i:02d}", "text": boilerplate_laden(t, rng)} for i, t in enumerate(en[11:])]
    docs += [{"id": "fr0", "text": udhr_paragraphs("fr", 1)[0]}]
    (ws.root / "d.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    write_card(ws, "src", "d.jsonl", languages="[en, fr]", data_extra=", id_field: id")
    return ws


def run_rows(out: Path) -> dict[str, dict]:
    cols = ("status", "reason", "detail", "signals", "lang")
    return {
        r["id"]: {k: r.get(k) for k in cols}
        for kind in ("kept", "rejected")
        for r in outputs.read_kind(out, kind).to_pylist()
    }


def test_classifier_separates_held_out_examples(trained):
    """Measured on 20% held out (12 + 12 lines): precision 0.75, recall 1.0 at score 0.5 (seed 0)."""
    meta = json.loads((trained.root / "models/classifiers/udhr/meta.json").read_text())
    held = meta["heldout"]
    assert held["measured_on"] == "heldout"
    assert held["true_positives"] + held["false_negatives"] == meta["examples"]["heldout_positive"] == 12
    assert held["precision"] >= 0.7 and held["recall"] >= 0.9, held
    pct = meta["percentiles"]
    assert pct["positive"]["p50"] > pct["all"]["p50"]  # the wanted text scores above the pool
    # provenance: each input by hash, the date, the settings
    assert [i["examples"] for i in meta["inputs"]["positive"]] == [61]
    assert len(meta["inputs"]["negative"][0]["sha256"]) == 64 and meta["trained"] and meta["lang"] == "en"


def test_classifier_threshold_percentile_rethreshold_and_annotate_only(trained, run_cli):
    ws, w = trained, ("--workspace", str(trained.root))
    (ws.root / "roots.yaml").write_text("classifiers: {udhr: {min_score: 0.5}}\n")
    assert run_cli(*w, "run", "src")[0] == 0
    rows = run_rows(ws.root / "runs/src")
    scores = {i: json.loads(r["signals"])["udhr_score"] for i, r in rows.items() if r["lang"] == "en"}
    assert len(scores) == 14 and "udhr_score" not in (rows["fr0"]["signals"] or "")  # en only
    removed = {i for i, r in rows.items() if r["reason"] == "classifier:udhr"}
    assert removed == {
        i for i, s in scores.items() if s < 0.5 and rows[i]["reason"] in (None, "classifier:udhr")
    }
    assert removed and all(i.startswith(("shuf", "boil")) for i in removed)
    assert min(s for i, s in scores.items() if i.startswith("real")) > 0.9  # page-length text scores high
    assert max(s for i, s in scores.items() if i.startswith("boil")) < 0.1
    stats = json.loads((ws.root / "runs/src/stats.json").read_text())
    assert (
        stats["classifiers"]["udhr"]["rejected"] == len(removed)
        and stats["classifiers"]["udhr"]["cut"] == 0.5
    )
    assert any(s["stage"] == "classifier" and s["removed"] == len(removed) for s in stats["stages"])

    rc, _, err = run_cli(*w, "report", str(ws.root / "runs/src"), "--out", str(ws.root / "r.html"))
    assert rc == 0, err
    page = (ws.root / "r.html").read_text()
    assert "udhr_score · en · n=14" in page and "held-out precision" in page
    assert "Quality classifier `udhr`" in (ws.root / "runs/src/README.md").read_text()

    # the percentile form: p40 of the held-out positives' scores, re-decided from the stored scores
    (ws.root / "roots.yaml").write_text("classifiers: {udhr: {percentile: 40}}\n")
    rc, out, err = run_cli(*w, "run", "src", "--rethreshold")
    assert rc == 0, err
    meta = json.loads((ws.root / "models/classifiers/udhr/meta.json").read_text())
    p40 = meta["percentiles"]["positive"]["p40"]
    re_rows = run_rows(ws.root / "runs/src")
    assert {i for i, r in re_rows.items() if r["reason"] == "classifier:udhr"} == {
        i for i, s in scores.items() if s < p40 and re_rows[i]["reason"] in (None, "classifier:udhr")
    }
    assert run_cli(*w, "run", "src", "--out", str(ws.root / "full"))[0] == 0
    assert run_rows(ws.root / "full") == re_rows  # re-thresholding equals a full run

    # annotate only: every score stored, nothing rejected by the classifier
    (ws.root / "roots.yaml").write_text(
        "classifiers: {udhr: {percentile: 40}}\nannotate_only: [classifier:udhr]\n"
    )
    assert run_cli(*w, "run", "src", "--rethreshold")[0] == 0
    ann = run_rows(ws.root / "runs/src")
    assert not any(r["reason"] == "classifier:udhr" for r in ann.values())
    assert all("udhr_score" in json.loads(ann[i]["signals"]) for i in scores)
    rc, out, _ = run_cli(*w, "inspect", "src", "--lang", "en", "-n", "1")
    assert rc == 0 and "udhr_score=" in out


def test_classifier_user_errors(trained, run_cli, tmp_path):
    ws, w = trained, ("--workspace", str(trained.root))
    (ws.root / "roots.yaml").write_text("classifiers: {nope: {min_score: 0.5}}\n")
    rc, _, err = run_cli(*w, "run", "src")
    assert rc == 2 and "no trained classifier" in err and "roots classifier train nope" in err
    (ws.root / "roots.yaml").write_text("classifiers: {udhr: {min_score: 0.5, percentile: 3}}\n")
    rc, _, err = run_cli(*w, "run", "src")
    assert rc == 2 and "exactly one of" in err
    (ws.root / "roots.yaml").write_text("annotate_only: [perplexityy]\n")
    rc, _, err = run_cli(*w, "run", "src")
    assert rc == 2 and "perplexityy" in err and "annotate_only" in err
    (ws.root / "roots.yaml").write_text("")
    rc, _, err = run_cli(
        *w,
        "classifier",
        "train",
        "x",
        "--positive",
        str(tmp_path / "missing.txt"),
        "--negative",
        str(tmp_path / "missing.txt"),
    )
    assert rc == 2 and "missing.txt" in err
    assert not (ws.root / "models/classifiers/x").exists()


def test_annotate_only_perplexity_and_quality_filter(ws, run_cli):
    """`annotate_only` is generic: a quality filter's statistic is stored and it rejects nothing."""
    docs = [
        {"id": "short", "text": "All human beings are born free."},
        {"id": "long", "text": udhr_paragraphs("en", 1)[0]},
    ]
    (ws.root / "d.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    write_card(ws, "s", "d.jsonl", languages="[en]", data_extra=", id_field: id")
    assert run_cli("--workspace", str(ws.root), "run", "s")[0] == 0
    assert run_rows(ws.root / "runs/s")["short"]["reason"] == "word_count"
    (ws.root / "roots.yaml").write_text("annotate_only: [word_count, perplexity]\n")
    assert run_cli("--workspace", str(ws.root), "run", "s", "--rethreshold")[0] == 0
    kept = {r["id"]: r for r in outputs.read_kind(ws.root / "runs/s", "kept").to_pylist()}
    assert "short" in kept and kept["short"]["number_words"] == 6


# ------------------------------------------------------------------------------------- decontamination
ITEMS = [
    {
        "question": "Which river flows through the ancient city of Baghdad before it joins the Euphrates?",
        "answer": "The Tigris",
    },
    {
        "question": "In what year did the first crewed spacecraft land on the Moon, "
        "and who stepped out first?",
        "answer": "1969, Neil Armstrong",
    },
    {"question": "法国的首都是哪一座城市并且它位于哪一条河流的两岸之上？", "answer": "巴黎，塞纳河"},
]


def planted_source(ws: workspace.Workspace) -> dict[str, str]:
    en = udhr_paragraphs("en", 6, min_words=60)
    zh = udhr_paragraphs("zh", 2, min_words=60)
    q0, q1, q2 = (f"{i['question']} {i['answer']}" for i in ITEMS)
    docs = {f"clean{i}": t for i, t in enumerate(en[:4])}
    docs["clean-zh"] = zh[0]
    docs["exact"] = q0
    # changed whitespace, case and punctuation
    docs["changed"] = (
        "in WHAT year,  did the first\ncrewed spacecraft land on the moon -- and who stepped out first!!"
    )
    docs["inside-page"] = f"{en[4]} {q1} {en[5]}"
    docs["no-space-script"] = zh[1][:80] + q2 + zh[1][80:]
    # twelve words of an item in a row: below the 13-word n-gram, so not a match
    docs["near-miss"] = f"{en[0]} Which river flows through the ancient city of Baghdad before it joins"
    (ws.root / "d.jsonl").write_text(
        "".join(json.dumps({"id": k, "text": v}, ensure_ascii=False) + "\n" for k, v in docs.items())
    )
    (ws.root / "eval.jsonl").write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in ITEMS))
    write_card(ws, "src", "d.jsonl", data_extra=", id_field: id")
    return docs


def register_set(run_cli, ws, name: str, path) -> None:
    """`roots decontam add NAME --path PATH --field question,answer`, which must succeed."""
    rc, _, err = run_cli("--workspace", str(ws.root), "decontam", "add", name, "--path", str(path), "--field",
                         "question,answer")
    assert rc == 0, err


def test_decontamination_removes_exactly_the_planted_items(ws, run_cli):
    planted_source(ws)
    w = ("--workspace", str(ws.root))
    rc, _, err = run_cli(
        *w,
        "decontam",
        "add",
        "quiz",
        "--path",
        str(ws.root / "eval.jsonl"),
        "--format",
        "jsonl",
        "--field",
        "question,answer",
    )
    assert rc == 0, err
    reg = json.loads((ws.root / "decontam/quiz/registration.json").read_text())
    assert reg["items"] == 3 and reg["items_too_short"] == 0 and len(reg["sha256"]) == 64
    assert run_cli(*w, "run", "src")[0] == 0
    rows = run_rows(ws.root / "runs/src")
    contaminated = {i for i, r in rows.items() if r["reason"] == "contaminated"}
    assert contaminated == {"exact", "changed", "inside-page", "no-space-script"}
    assert "evaluation set quiz" in rows["exact"]["detail"]
    assert (
        '"which river flows through the ancient city of baghdad before it joins the"'
        in (rows["exact"]["detail"])
    )
    assert "法国的首都" in rows["no-space-script"]["detail"]
    stats = json.loads((ws.root / "runs/src/stats.json").read_text())
    assert stats["decontamination"]["per_set"]["quiz"] == {"documents_overlapping": 4, "documents_removed": 4}
    assert any(s["stage"] == "decontam" and s["removed"] == 4 for s in stats["stages"])
    card = (ws.root / "runs/src/README.md").read_text()
    assert "quiz" in card and "Decontamination" in card


def test_set_registered_after_the_run_is_applied_at_merge(ws, run_cli):
    planted_source(ws)
    w = ("--workspace", str(ws.root))
    (ws.root / "first.jsonl").write_text(json.dumps(ITEMS[0]) + "\n")
    register_set(run_cli, ws, "first", ws.root / "first.jsonl")
    assert run_cli(*w, "run", "src")[0] == 0
    kept = {r["id"] for r in outputs.read_kind(ws.root / "runs/src", "kept").to_pylist()}
    planted_kept = kept & {"changed", "inside-page", "no-space-script"}
    assert planted_kept and "exact" not in kept
    # registered after the run: the run did not check it, the merge must
    register_set(run_cli, ws, "later", ws.root / "eval.jsonl")
    rc, _, err = run_cli(*w, "merge", "--vocab-size", "600")
    assert rc == 0, err
    manifest = json.loads((ws.root / "release/latest/manifest.json").read_text())
    per_set = manifest["decontamination"]["per_set"]
    assert (
        per_set["first"]["checked_in_runs"] == ["src"] and per_set["first"]["documents_removed_in_runs"] == 1
    )
    assert per_set["later"]["checked_at_merge"] == ["src"]
    assert per_set["later"]["documents_removed_at_merge"] == len(planted_kept)  # "exact" was gone already
    assert manifest["sources_included"][0]["removed_at_merge"] == {"contaminated": len(planted_kept)}
    card = (ws.root / "release/latest/README.md").read_text()
    assert "later" in card and "Decontamination" in card
    page = (ws.root / "release/latest/report.html").read_text()
    assert "<h4>Decontamination</h4>" in page and "later" in page


def test_decontam_user_errors(ws, run_cli):
    w = ("--workspace", str(ws.root))
    (ws.root / "bad.jsonl").write_text('{"question": "a b c"}\nnot json\n')
    rc, _, err = run_cli(
        *w, "decontam", "add", "bad", "--path", str(ws.root / "bad.jsonl"), "--field", "question"
    )
    assert rc == 2 and "bad.jsonl:2" in err
    rc, _, err = run_cli(*w, "decontam", "add", "bad", "--path", str(ws.root / "bad.jsonl"), "--field", "q")
    assert rc == 2 and "bad.jsonl:1" in err and "question" in err
    rc, _, err = run_cli(*w, "decontam", "add", "bad", "--path", str(ws.root / "bad.jsonl"))
    assert rc == 2 and "--field" in err
    assert not (ws.root / "decontam/bad").exists()


def test_ngrams_ignore_case_whitespace_and_punctuation():
    a = decontam.ngram_hashes(
        decontam.units("The Tigris, which flows -- through Baghdad!", normalised=False), 3
    )
    b = decontam.ngram_hashes(
        decontam.units("the   tigris which\nflows through BAGHDAD.", normalised=False), 3
    )
    assert np.array_equal(a, b) and len(a) == 4


_CHILD = """
import json, sys, numpy as np
from roots.stages import decontam
def mem():
    out = {}
    for line in open("/proc/self/smaps_rollup"):
        k, v = line.split(":", 1)
        if k in ("Rss", "Anonymous", "Pss"):
            out[k] = int(v.split()[0]) * 1024
    return out
sets = decontam.registered_sets(__import__("pathlib").Path(sys.argv[1]))
texts = [line for line in open(sys.argv[2], encoding="utf-8")]
for t in texts:  # the word lists and unit hashes, the same whatever the index: warmed before measuring
    decontam.ngram_hashes(decontam.units(t), 13)
before = mem()
hits = sum(bool(decontam.matches(t, sets)) for t in texts)
after = mem()
print(json.dumps({"hits": hits, "before": before, "after": after}))
"""


def test_large_eval_set_is_shared_not_copied_per_worker(ws, tmp_path):
    """100,000 items: three worker processes checking documents each add far less private memory than the
    index's size (the index pages are the shared, file-backed page cache)."""
    from roots.jobs import decontam as job

    rng = random.Random(3)
    vocab = sorted(
        {w.strip(".,;:").lower() for t in udhr_paragraphs("en", 15, min_words=60) for w in t.split()}
    )
    items = [" ".join(rng.choice(vocab) for _ in range(30)) for _ in range(100_000)]
    (tmp_path / "big.txt").write_text("\n".join(items) + "\n")
    reg = job.register(ws, "big", tmp_path / "big.txt", "text", [], 13)
    assert reg["items"] == 100_000 and reg["ngrams"] > 1_500_000
    docs = [
        f"{t} {items[i * 401]}" if i % 10 == 0 else t
        for i, t in enumerate(udhr_paragraphs("en", 15, min_words=60) * 14)
    ]
    (tmp_path / "docs.txt").write_text("\n".join(d.replace("\n", " ") for d in docs) + "\n")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(job.root_of(ws)), str(tmp_path / "docs.txt")],
            stdout=subprocess.PIPE,
            cwd=REPO,
        )
        for _ in range(3)
    ]
    results = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    for r in results:
        assert r["hits"] == sum(1 for i in range(len(docs)) if i % 10 == 0)
        private_growth = r["after"]["Anonymous"] - r["before"]["Anonymous"]
        assert private_growth < reg["index_bytes"] / 4, (private_growth, reg["index_bytes"])
    print(
        f"index {reg['ngrams']} n-grams, {reg['index_bytes']} bytes; per worker: "
        + ", ".join(
            f"private +{(r['after']['Anonymous'] - r['before']['Anonymous']) / 1e6:.2f} MB, "
            f"RSS +{(r['after']['Rss'] - r['before']['Rss']) / 1e6:.2f} MB"
            for r in results
        )
    )


def test_rethreshold_checks_sets_registered_since_the_run_and_equals_a_full_run(ws, run_cli):
    planted_source(ws)
    w = ("--workspace", str(ws.root))
    (ws.root / "first.jsonl").write_text(json.dumps(ITEMS[0]) + "\n")
    register_set(run_cli, ws, "first", ws.root / "first.jsonl")
    assert run_cli(*w, "run", "src")[0] == 0
    register_set(run_cli, ws, "later", ws.root / "eval.jsonl")
    assert run_cli(*w, "run", "src", "--rethreshold")[0] == 0
    assert run_cli(*w, "run", "src", "--out", str(ws.root / "full"))[0] == 0
    re_rows, full_rows = run_rows(ws.root / "runs/src"), run_rows(ws.root / "full")
    assert re_rows == full_rows
    assert {i for i, r in re_rows.items() if r["reason"] == "contaminated"} == {
        "exact",
        "changed",
        "inside-page",
        "no-space-script",
    }


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=6).filter(lambda w: " " not in w), min_size=1, max_size=40))
def test_a_unit_hash_depends_on_the_unit_only(words):
    """Same unit, same hash wherever it stands in the batch; different units, different hashes."""
    h = decontam.unit_hashes(words).tolist()
    for i, a in enumerate(words):
        for j, b in enumerate(words):
            assert (a == b) == (h[i] == h[j])
    assert decontam.unit_hashes(words[::-1]).tolist() == h[::-1]


def test_several_classifiers_one_added_after_the_run(trained, run_cli, tmp_path):
    """A second classifier configured after the run: --rethreshold scores what it has not scored and
    equals a full run; both scores are stored, each rejects with its own reason."""
    ws, w = trained, ("--workspace", str(trained.root))
    (ws.root / "roots.yaml").write_text("classifiers: {udhr: {min_score: 0.5}}\n")
    assert run_cli(*w, "run", "src")[0] == 0
    lines = [
        x for x in (REPO / "roots/data/lm_reference/en.txt").read_text("utf-8").splitlines() if x.strip()
    ]
    rng = random.Random(2)
    (tmp_path / "p.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "n.txt").write_text("\n".join(boilerplate_laden(x, rng) for x in lines) + "\n")
    assert (
        run_cli(
            *w,
            "classifier",
            "train",
            "clean",
            "--positive",
            str(tmp_path / "p.txt"),
            "--negative",
            str(tmp_path / "n.txt"),
            "--lang",
            "en",
        )[0]
        == 0
    )
    (ws.root / "roots.yaml").write_text("classifiers: {udhr: {min_score: 0.5}, clean: {min_score: 0.5}}\n")
    assert run_cli(*w, "run", "src", "--rethreshold")[0] == 0
    assert run_cli(*w, "run", "src", "--out", str(ws.root / "full2"))[0] == 0
    rows = run_rows(ws.root / "runs/src")
    assert rows == run_rows(ws.root / "full2")
    en = [r for r in rows.values() if r["lang"] == "en"]
    assert all({"udhr_score", "clean_score"} <= set(json.loads(r["signals"])) for r in en)
    assert {r["reason"] for r in en} >= {"classifier:udhr", "classifier:clean"}


def test_the_new_stages_are_in_the_stage_registry():
    from roots.core import schema

    assert schema.stage_of("classifier:wiki_ref") == "classifier" and schema.redecided("classifier:wiki_ref")
    assert schema.stage_of("contaminated") == "decontam" and schema.redecided("contaminated")
    assert {"classifier", "decontam"} <= set(schema.STAGES) & set(schema.STAGE_ORDER)
    assert not schema.redecided("duplicate") and not schema.redecided(None)
