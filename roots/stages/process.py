"""The per-document stages of a source run, in order, on batches of documents; no Beam here.

Score, then decide: every statistic is computed and stored for each document that reaches the scoring
stages, and only then are the per-language thresholds applied, so thresholds can be re-tuned later from
the stored values. The Beam DoFn in `pipelines/` only wraps `DocumentProcessor`.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roots.core.schema import CODE_STAT_FIELDS, STAT_FIELDS
from roots.stages import normalise as norm
from roots.stages import quality
from roots.stages.perplexity import ppl_cap
from roots.stages.recipes import Recipe


@dataclass(frozen=True)
class ProcessConfig:
    """Everything a worker needs, picklable, with paths that a cluster filesystem can serve."""

    source: str
    declared: tuple[str, ...] = ()  # empty for `multi` sources: language ID assigns the language
    recipe: tuple[str, ...] = ()
    skip: frozenset[str] = frozenset()
    thresholds: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    langid_model: str | None = None
    langid_routing: str | None = None  # routing table YAML; None: roots/data/langid_routing.yaml
    max_chars: int = norm.DEFAULT_MAX_CHARS
    pii_tags: tuple[str, ...] = ()
    # PiiScrubber rule switches from the card's `recipe.pii_rules` (roots.stages.pii.RULE_SETTINGS)
    pii_rules: tuple[tuple[str, bool], ...] = ()
    lm_dir: str | None = None
    # A `kind: code` source goes through roots/stages/code.py instead of the natural-language stages.
    code: bool = False
    code_languages: str | None = None  # language table YAML; None: roots/data/code_languages.yaml
    license: str = ""  # the card's licence: a code file's licence unless the file states its own
    cleared_licenses: frozenset[str] = frozenset()  # lower-cased ids the policy clears for training


class DocumentProcessor:
    """Holds the models (loaded lazily, once per worker) and runs the stages on a batch."""

    def __init__(self, cfg: ProcessConfig) -> None:
        self.cfg = cfg
        self.recipe = Recipe.from_names(cfg.recipe)
        self._langid: Any = None
        self._pii: Any = None
        self._params: dict[str, quality.LangParams] = {}
        self._code_params: dict[str, Any] = {}
        self._lms: dict[str, Any] = {}
        # CPU seconds of this thread per stage (time.thread_time): on a busy machine wall-clock timers
        # would count the time spent waiting for a core as work done (stats.json's stage_cpu_seconds)
        self.timings: dict[str, float] = defaultdict(float)

    # ------------------------------------------------------------------ lazy resources
    def params(self, lang: str) -> quality.LangParams:
        if lang not in self._params:
            self._params[lang] = quality.resolve_params(lang, self.cfg.thresholds)
        return self._params[lang]

    @property
    def langid(self) -> Any:
        if self._langid is None:
            from roots.stages import langid

            self._langid = langid.load(self.cfg.langid_model)
        return self._langid

    @property
    def pii(self) -> Any:
        if self._pii is None:
            from roots.stages.pii import PiiScrubber

            self._pii = PiiScrubber(tags=frozenset(self.cfg.pii_tags), **dict(self.cfg.pii_rules))
        return self._pii

    def lm(self, lang: str) -> Any:
        """The perplexity model for a language, or None when none was trained."""
        if lang not in self._lms:
            model = None
            if self.cfg.lm_dir:
                model_dir = Path(self.cfg.lm_dir) / lang
                if (model_dir / "calibration.json").exists():
                    from roots.stages.perplexity import PerplexityModel

                    model = PerplexityModel.load(model_dir)
            self._lms[lang] = model
        return self._lms[lang]

    # ------------------------------------------------------------------ stages
    def code_params(self, lang: str) -> Any:
        """Code thresholds of a `code-<x>` language: the table, then the card's `code` and `code-<x>`
        overrides."""
        if lang not in self._code_params:
            from roots.stages import code

            overrides: dict[str, Any] = dict(self.cfg.thresholds.get(code.UNKNOWN_LANG, {}))
            overrides.update(self.cfg.thresholds.get(lang, {}))
            table = code.load_table(self.cfg.code_languages)
            self._code_params[lang] = table.params(code.lang_key(lang) or "", overrides or None)
        return self._code_params[lang]

    def process(self, docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.cfg.code:
            return self._process_code(docs)
        out: list[dict[str, Any]] = []
        live: list[dict[str, Any]] = []
        t0 = time.thread_time()
        for doc in docs:
            row = self._new_row(doc)
            if norm.over_length(doc["text"], self.cfg.max_chars):
                n = len(doc["text"])
                row["text"] = doc["text"][: self.cfg.max_chars]
                self._reject(row, "too_long", f"{n} characters > max {self.cfg.max_chars}; the stored text "
                             "is truncated to the cap")
                out.append(row)
                continue
            text, op, detail = self.recipe.apply(doc["text"], doc.get("meta") or "")
            row["text"] = text
            if op is not None:
                self._reject(row, op, detail)
                out.append(row)
                continue
            live.append(row)
        t1 = time.thread_time()
        self.timings["recipe"] += t1 - t0
        for row in live:
            row["text"] = norm.normalise(row["text"])
        t2 = time.thread_time()
        self.timings["normalise"] += t2 - t1
        self._language(live)
        t3 = time.thread_time()
        self.timings["langid"] += t3 - t2
        for row in live:
            self._score(row)
        self._perplexity(live)
        t4 = time.thread_time()
        for row in live:
            if row["status"] == "pending":
                self.decide(row)
        self.timings["decide"] += time.thread_time() - t4
        t5 = time.thread_time()
        if "pii" not in self.cfg.skip and self.cfg.pii_tags:
            for row in out + live:
                row["text"], counts = self.pii.scrub(row["text"])
                row["pii"] = json.dumps(counts, sort_keys=True) if counts else ""
        self.timings["pii"] += time.thread_time() - t5
        return out + live

    def _process_code(self, docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Code: no normalisation, language ID, word removals, quality or perplexity (they would break or
        reject code); the language comes from the extension, then code statistics and filters, then
        secrets instead of personal PII. The text is kept exactly as read, apart from scrubbed secrets."""
        from roots.stages import code

        table = code.load_table(self.cfg.code_languages)
        rows: list[dict[str, Any]] = []
        t0 = time.thread_time()
        for doc in docs:
            row = self._new_row(doc)
            rows.append(row)
            key = table.language_of(doc.get("code_path") or "")
            row.update(lang=code.doc_lang(key), lang_backend="extension", ppl_status="skipped")
            if doc.get("code_error"):
                row["n_bytes"] = int(doc.get("code_bytes") or 0)
                self._reject(row, *doc["code_error"])
                continue
            if norm.over_length(doc["text"], self.cfg.max_chars):
                n = len(doc["text"])
                row["text"] = doc["text"][: self.cfg.max_chars]
                self._reject(row, "too_long", f"{n} characters > max {self.cfg.max_chars}; the stored text "
                             "is truncated to the cap")
                continue
            text, op, detail = self.recipe.apply(doc["text"], doc.get("meta") or "")
            row["text"], row["n_chars"] = text, len(text)
            if op is not None:
                self._reject(row, op, detail)
                continue
            if key is None:
                self._reject(row, "code_unknown_extension", f"no programming language in {table.path} has "
                             f"the extension of {doc.get('code_path') or '(no path)'!r}")
                continue
            row["license"], origin = code.file_license(text, doc.get("license"), self.cfg.license)
            if origin != "card":
                row["meta"] = _with_meta(row["meta"], "license_from", origin)
            if "quality" not in self.cfg.skip:
                for name, value in code.code_stats(text).items():
                    row[name] = float(value)
        t1 = time.thread_time()
        self.timings["quality"] += t1 - t0
        for row in rows:
            if row["status"] == "pending":
                self.decide(row)
        t2 = time.thread_time()
        self.timings["decide"] += t2 - t1
        if "pii" not in self.cfg.skip:
            for row in rows:
                row["text"], counts = code.scrub_secrets(row["text"])
                row["pii"] = json.dumps(counts, sort_keys=True) if counts else ""
        self.timings["pii"] += time.thread_time() - t2
        return rows

    def _decide_code(self, row: dict[str, Any]) -> None:
        """Licence, then ROOTS's code filters, on the stored statistics (so `--rethreshold` works too)."""
        from roots.stages import code

        if row.get("license"):
            why = code.license_verdict(row["license"], self.cfg.license, self.cfg.cleared_licenses)
            if why is not None:
                self._reject(row, "code_license", why)
                return
        if "quality" not in self.cfg.skip and code.lang_key(row["lang"]):
            stats = {k: row.get(k) for k in CODE_STAT_FIELDS}
            reason, detail = code.decide(row["text"], stats, self.code_params(row["lang"]))
            if reason is not None:
                self._reject(row, reason, detail or "")
                return
        row["status"] = "kept"

    def _new_row(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": doc["id"], "text": doc["text"], "source": self.cfg.source, "url": doc.get("url"),
            "origin": doc.get("origin", ""), "meta": doc.get("meta") or "",
            "lang": self.cfg.declared[0] if self.cfg.declared else "und", "lang_score": None,
            "lang_predicted": None, "lang_backend": None, "n_chars": len(doc["text"]),
            "n_bytes": len(doc["text"].encode("utf-8", "surrogatepass")),
            "perplexity": None, "ppl_status": None, "pii": "", "cluster": None,
            "status": "pending", "reason": None, "detail": None,
        }
        for name in (*STAT_FIELDS, *CODE_STAT_FIELDS):
            row[name] = None
        row["license"] = None
        return row

    @staticmethod
    def _reject(row: dict[str, Any], reason: str, detail: str) -> None:
        row["status"], row["reason"], row["detail"] = "rejected", reason, detail

    def _language(self, rows: list[dict[str, Any]]) -> None:
        """Assign each row's language with the routed backends (roots/data/langid_routing.yaml).

        fastText decides what it is sure of; CLD3 decides the languages the table trusts it with when
        fastText is not sure. `lang_backend` records which one decided (or `declared`), so the run stats
        show per language how many documents each backend labelled. A declared language that no backend
        covers is kept as declared: filtering it would reject every document for a model's blind spot.
        """
        if not rows:
            return
        if "langid" in self.cfg.skip:
            for row in rows:
                row["lang_backend"] = "declared"
            return
        from roots.stages.routing import load_router

        router = load_router(self.cfg.langid_model, self.cfg.langid_routing)  # cached: once per worker
        decisions = router.predict([r["text"] for r in rows], lid_min=lambda lang: self.params(lang).lid_min)
        declared = self.cfg.declared
        uncovered = [lang for lang in declared if not router.covers(lang)]
        for row, pred in zip(rows, decisions):
            row["lang_predicted"], row["lang_score"] = pred.lang, round(pred.score, 6)
            row["lang_backend"] = pred.backend
            self.language_verdict(row, uncovered)

    def language_verdict(self, row: dict[str, Any], uncovered: Sequence[str]) -> None:
        """Assign the language and reject on the stored prediction; shared with `--rethreshold`."""
        declared = self.cfg.declared
        pred_lang, score, backend = row["lang_predicted"], float(row["lang_score"]), row["lang_backend"]
        if not declared or pred_lang in declared:  # multi: language ID assigns the language
            row["lang"] = pred_lang
            need = self.params(pred_lang).lid_min
            if score < need:
                self._reject(row, "language", f"predicted {pred_lang} with score {score:.3f} < {need} "
                                              f"({backend})")
            return
        if uncovered:  # no backend can recognise a declared language: trust the card, never filter
            row["lang"], row["lang_backend"] = uncovered[0], "declared"
            return
        row["lang"] = declared[0]
        self._reject(row, "language", f"predicted {pred_lang} ({score:.3f}, {backend}), declared "
                                      f"{','.join(declared)}")

    def _score(self, row: dict[str, Any]) -> None:
        t0 = time.thread_time()
        params = self.params(row["lang"])
        if "modify" not in self.cfg.skip:
            row["text"] = quality.modify_document(row["text"], params)
        t1 = time.thread_time()
        self.timings["modify"] += t1 - t0
        row["n_chars"] = len(row["text"])
        if "quality" not in self.cfg.skip:
            for key, value in quality.compute_stats(row["text"], row["lang"], params).items():
                row[key] = float(value)
        self.timings["quality"] += time.thread_time() - t1

    def _perplexity(self, rows: list[dict[str, Any]]) -> None:
        t0 = time.thread_time()
        for row in rows:
            if "perplexity" in self.cfg.skip:
                row["ppl_status"] = "skipped"
                continue
            model = self.lm(row["lang"])
            if model is None:
                row["ppl_status"] = "no_model"
                continue
            row["perplexity"] = float(model.perplexity(row["text"]))
            row["ppl_status"] = "scored"
        self.timings["perplexity"] += time.thread_time() - t0

    def ppl_threshold(self, lang: str) -> float | None:
        """Absolute maximum (ROOTS) or a percentile of the model's held-out calibration (cc_net), resolved
        from the same parameters as every other threshold (`roots.stages.perplexity.ppl_cap`)."""
        model = self.lm(lang)
        return ppl_cap(self.params(lang), model.calibration if model is not None else None)[0]

    def decide(self, row: dict[str, Any]) -> None:
        """Apply the quality and perplexity thresholds to a row's stored statistics (also `--rethreshold`)."""
        if self.cfg.code:
            self._decide_code(row)
            return
        if "quality" not in self.cfg.skip:
            stats = {k: row[k] for k in STAT_FIELDS}
            reason, detail = quality.decide(stats, self.params(row["lang"]))
            if reason is not None:
                self._reject(row, reason, detail)
                return
        if row["perplexity"] is not None:
            limit = self.ppl_threshold(row["lang"])
            if limit is not None and not math.isnan(limit) and row["perplexity"] > limit:
                self._reject(row, "perplexity", f"perplexity={row['perplexity']:.1f} > max {limit:.1f}")
                return
        row["status"] = "kept"


def _with_meta(meta: str, key: str, value: Any) -> str:
    """Add one key to a row's JSON `meta` (an empty string when the record had no other fields)."""
    data = json.loads(meta) if meta else {}
    data[key] = value
    return json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)
