"""`roots classifier train`: a fastText quality classifier from a steward's wanted and unwanted examples.

As DCLM's fastText filter and RedPajama-2's Wikipedia-reference classifier: a supervised fastText model,
label `pos` for the wanted text and `neg` for the rest. A share of each class is held out (stratified,
seeded) and measured: precision and recall of `score >= 0.5` on the held-out examples, and the held-out
scores' percentiles, which the `percentile` form of a cut reads (`roots.stages.classifier`), as `roots lm
train` stores perplexity percentiles. The model, the measurements and the provenance (every input's
sha256 and line count, the date, the settings, fastText's version) are written into a temporary directory
that is renamed into place, so a crash never leaves a half-written classifier a run would load.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
from pathlib import Path
from typing import Any

from roots.core import publishing
from roots.core.errors import JobError, UserError
from roots.core.util import library_versions, sha256_file
from roots.jobs.train_lm import _real_stderr
from roots.stages import classifier as clf

DEFAULTS: dict[str, Any] = {
    "epoch": 50,
    "lr": 0.5,
    "word_ngrams": 2,
    "dim": 16,
    "bucket": 200_000,
    "min_count": 1,
}
"""fastText settings: bigrams (so word order counts, not only vocabulary), a small dimension and bucket
table (a 200k x 16 model is ~13 MB, loaded once per worker); one thread, so the same inputs give the same
model."""


def read_examples(paths: list[Path], role: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Every non-blank line of the files (one example per line), and each file's provenance."""
    examples: list[str] = []
    provenance = []
    for path in paths:
        if not path.is_file():
            raise UserError(f"--{role} {path}: no such file; give text files with one example per line.")
        try:
            lines = [clf.prepare(line).strip() for line in path.read_text(encoding="utf-8").splitlines()]
        except UnicodeDecodeError as exc:
            raise UserError(f"--{role} {path}: not UTF-8 text ({exc}).") from None
        lines = [line for line in lines if line]
        examples.extend(lines)
        provenance.append({"path": str(path), "sha256": sha256_file(path), "examples": len(lines)})
    if not examples:
        raise UserError(f"the --{role} files hold no examples (one example per non-blank line).")
    return examples, provenance


def _split(examples: list[str], fraction: float, rng: random.Random) -> tuple[list[str], list[str]]:
    shuffled = examples[:]
    rng.shuffle(shuffled)
    n_held = round(len(shuffled) * fraction)
    if fraction > 0 and len(shuffled) > 1:
        n_held = max(1, min(n_held, len(shuffled) - 1))
    return shuffled[n_held:], shuffled[:n_held]


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    out = {}
    for p in clf.PERCENTILES:
        pos = (len(ordered) - 1) * p / 100
        lo = int(pos)
        hi = min(lo + 1, len(ordered) - 1)
        out[f"p{p}"] = round(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo), 6)
    return out


def train_classifier(
    name: str,
    positives: list[Path],
    negatives: list[Path],
    out_dir: Path,
    lang: str | None = None,
    holdout: float = 0.1,
    seed: int = 0,
    **settings: Any,
) -> dict[str, Any]:
    """Train, measure on the held-out share and store the classifier under `out_dir`; returns its meta."""
    import fasttext

    clf.check_name(name, "roots classifier train")
    if not 0.0 <= holdout < 1.0:
        raise UserError(f"--holdout must be at least 0 and below 1, got {holdout}.")
    params = {**DEFAULTS, **{k: v for k, v in settings.items() if v is not None}}
    pos, pos_prov = read_examples(positives, "positive")
    neg, neg_prov = read_examples(negatives, "negative")
    rng = random.Random(seed)
    pos_train, pos_held = _split(pos, holdout, rng)
    neg_train, neg_held = _split(neg, holdout, rng)
    train = [f"{clf.POSITIVE} {t}" for t in pos_train] + [f"{clf.NEGATIVE} {t}" for t in neg_train]
    rng.shuffle(train)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = publishing.temp_dir_for(out_dir)
    work.mkdir()
    try:
        train_file = work / "train.txt"
        train_file.write_text("\n".join(train) + "\n", encoding="utf-8")
        try:
            with _real_stderr():
                model = fasttext.train_supervised(
                    input=str(train_file),
                    epoch=int(params["epoch"]),
                    lr=float(params["lr"]),
                    wordNgrams=int(params["word_ngrams"]),
                    dim=int(params["dim"]),
                    bucket=int(params["bucket"]),
                    minCount=int(params["min_count"]),
                    thread=1,
                    seed=seed,
                    verbose=0,
                    loss="softmax",
                )
        except (RuntimeError, ValueError) as exc:
            raise JobError(f"fastText training of classifier {name} failed: {exc}") from None
        train_file.unlink()
        model.save_model(str(work / clf.MODEL_FILE))
        scorer = clf.Classifier(work, model)
        measured_on = "heldout" if pos_held and neg_held else "train"
        eval_pos = pos_held if measured_on == "heldout" else pos_train
        eval_neg = neg_held if measured_on == "heldout" else neg_train
        s_pos, s_neg = scorer.scores(eval_pos), scorer.scores(eval_neg)
        tp = sum(s >= 0.5 for s in s_pos)
        fp = sum(s >= 0.5 for s in s_neg)
        meta: dict[str, Any] = {
            "name": name,
            "lang": lang,
            "labels": {"positive": clf.POSITIVE, "negative": clf.NEGATIVE},
            "score": "fastText P(positive) of the first 4000 characters, lower-cased, line breaks as spaces",
            "trained": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "inputs": {"positive": pos_prov, "negative": neg_prov},
            "examples": {
                "positive": len(pos),
                "negative": len(neg),
                "train": len(train),
                "heldout_positive": len(pos_held),
                "heldout_negative": len(neg_held),
            },
            "holdout": holdout,
            "seed": seed,
            "settings": params,
            "heldout": {
                "measured_on": measured_on,
                "threshold": 0.5,
                "precision": round(tp / (tp + fp), 4) if tp + fp else None,
                "recall": round(tp / len(s_pos), 4) if s_pos else None,
                "true_positives": tp,
                "false_positives": fp,
                "false_negatives": len(s_pos) - tp,
                "true_negatives": len(s_neg) - fp,
            },
            "percentiles": {"positive": _percentiles(s_pos), "all": _percentiles(s_pos + s_neg)},
            "versions": library_versions(("fasttext", "numpy")),
        }
        (work / clf.META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", "utf-8")
        publishing.swap_into_place(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    clf.load.cache_clear()
    return meta
