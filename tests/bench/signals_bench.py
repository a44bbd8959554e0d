"""`make bench` rows of issue 23: quality-classifier scoring and decontamination, documents per second per
core against language ID on the same documents, and the decontamination index's memory per million n-grams.

The classifier is trained here on the bundled English UDHR (positive) and its shuffled lines (negative); the
evaluation set is 100,000 synthetic 30-word items over the UDHR vocabulary (about 1.8M distinct 13-grams),
registered in a throw-away workspace as `roots decontam add` does. Every document is checked, whatever its
language; the classifier scores every document too (an upper bound: a run scores only its language's).
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _classifier(tmp: Path) -> Path:
    from roots.jobs.train_classifier import train_classifier

    lines = [
        x for x in (REPO / "roots/data/lm_reference/en.txt").read_text("utf-8").splitlines() if x.strip()
    ]
    rng = random.Random(1)
    neg = []
    for line in lines:
        words = line.split()
        rng.shuffle(words)
        neg.append(" ".join(words))
    (tmp / "pos.txt").write_text("\n".join(lines) + "\n", "utf-8")
    (tmp / "neg.txt").write_text("\n".join(neg) + "\n", "utf-8")
    out = tmp / "models/classifiers/bench"
    train_classifier("bench", [tmp / "pos.txt"], [tmp / "neg.txt"], out, lang="en")
    return out


def _eval_set(tmp: Path, items: int) -> dict[str, Any]:
    from roots.core import workspace
    from roots.jobs import decontam

    rng = random.Random(3)
    vocab = sorted(
        {
            w.strip(".,;:").lower()
            for w in (REPO / "roots/data/lm_reference/en.txt").read_text("utf-8").split()
        }
    )
    (tmp / "eval.txt").write_text(
        "\n".join(" ".join(rng.choice(vocab) for _ in range(30)) for _ in range(items)) + "\n"
    )
    ws = workspace.init(tmp / "ws")
    return {"ws": ws, "reg": decontam.register(ws, "bench", tmp / "eval.txt", "text", [], 13)}


def signal_rows(docs: list[dict[str, Any]], items: int = 100_000, batch: int = 256) -> list[dict[str, Any]]:
    from roots.jobs import decontam as decontam_job
    from roots.stages import classifier, decontam, langid, normalise
    from tests.bench.bench import rss_mb, timed  # here: bench.py imports this module at its top

    texts = [normalise.normalise(d["text"]) for d in docs]
    n = len(texts)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = langid.load()
        timed(
            "signals: langid (fastText, batched; the yardstick)",
            n,
            lambda: [p for i in range(0, n, batch) for p in model.predict(texts[i : i + batch])],
            rows,
        )
        scorer = classifier.Classifier(_classifier(tmp))
        scorer.scores(texts[:1])  # load the model outside the timing, as a worker does once
        timed(
            "signals: quality classifier scoring (fastText, batched)",
            n,
            lambda: [s for i in range(0, n, batch) for s in scorer.scores(texts[i : i + batch])],
            rows,
        )
        made = _eval_set(tmp, items)
        reg = made["reg"]
        sets = decontam_job.sets_of(made["ws"])
        before = rss_mb()
        hits = timed(
            f"signals: decontamination (13-grams, {reg['ngrams']:,} in the index)",
            n,
            lambda: [
                h for i in range(0, n, batch) for h in decontam.matches_many(texts[i : i + batch], sets)
            ],
            rows,
        )
        rows[-1]["documents_overlapping"] = sum(1 for h in hits if h)
        per_million = reg["index_bytes"] / 1e6 / (reg["ngrams"] / 1e6)
        rows.append(
            {
                "stage": "signals: decontamination index (MB per million n-grams, file-backed, shared)",
                "docs": None,
                "wall_s": None,
                "cpu_s": None,
                "docs_per_s_per_core": None,
                "peak_rss_mb": round(rss_mb(), 1),
                "index_mb_per_million_ngrams": round(per_million, 2),
                "index_mb": round(reg["index_bytes"] / 1e6, 2),
                "ngrams": reg["ngrams"],
                "peak_rss_growth_mb": round(rss_mb() - before, 1),
            }
        )
    lid, clf_row, dec_row, idx = rows
    for r in (clf_row, dec_row):
        print(
            f"{r['stage'].removeprefix('signals: ')}: {r['docs_per_s_per_core']} docs/s/core, "
            f"{r['docs_per_s_per_core'] / lid['docs_per_s_per_core']:.2f}x language ID's "
            f"{lid['docs_per_s_per_core']} (goal: above 1x, i.e. cheaper per document)"
        )
    print(
        f"decontamination index: {idx['index_mb_per_million_ngrams']} MB per million n-grams "
        f"({idx['ngrams']:,} n-grams, {idx['index_mb']} MB memory-mapped, shared by every worker)"
    )
    return rows


if __name__ == "__main__":
    from tests.bench.bench import generate_corpus, print_table

    print_table(signal_rows(generate_corpus(4000)))
