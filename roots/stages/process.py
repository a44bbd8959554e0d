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

from roots.core.errors import UserError
from roots.core.schema import CODE_STAT_FIELDS, CONTAMINATED, QUALITY_REASONS, SIGNALS, STAT_FIELDS
from roots.io.urlrules import UrlRules
from roots.stages import classifier as clf
from roots.stages import decontam, quality
from roots.stages import normalise as norm
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
    calibrated: tuple[str, ...] = ()  # languages whose thresholds `roots thresholds calibrate` wrote
    langid_model: str | None = None
    langid_routing: str | None = None  # routing table YAML; None: roots/data/langid_routing.yaml
    max_chars: int = norm.DEFAULT_MAX_CHARS
    normalise_unicode: bool = True  # roots.yaml `normalise.unicode`: ftfy and NFC (false: none, as ROOTS)
    pii_tags: tuple[str, ...] = ()
    # PiiScrubber rule switches from the card's `recipe.pii_rules` (roots.stages.pii.RULE_SETTINGS)
    pii_rules: tuple[tuple[str, bool], ...] = ()
    lm_dir: str | None = None
    # A `kind: code` source goes through roots/stages/code.py instead of the natural-language stages.
    code: bool = False
    code_languages: str | None = None  # language table YAML; None: roots/data/code_languages.yaml
    license: str = ""  # the card's licence: a code file's licence unless the file states its own
    cleared_licenses: frozenset[str] = frozenset()  # lower-cased ids the policy clears for training
    classifiers: tuple[clf.ClassifierSpec, ...] = ()  # quality classifiers (roots.stages.classifier)
    decontam_sets: tuple[decontam.EvalSet, ...] = ()  # evaluation sets checked (roots.stages.decontam)
    # reasons whose stage only stores its signal and rejects nothing (`annotate_names`)
    annotate_only: frozenset[str] = frozenset()

    # The card's `recipe.urls` rules (roots/io/urlrules.py). Web readers check them before extraction;
    # here they cover the other formats' URL field.
    url_rules: UrlRules | None = None
    # Card `recipe.langid_hint`: a page's HTML `lang` attribute decides its language when no language-ID
    # backend is sure (score below lid_min) and the hint names a language; otherwise it is only recorded.
    langid_hint: bool = False


def annotate_names(names: Any, classifiers: Sequence[clf.ClassifierSpec], where: str) -> frozenset[str]:
    """The reasons an `annotate_only` list switches to annotate-only, checked against what can decide.

    Names are rejection reasons (`word_count`, `perplexity`, `classifier:NAME`, `contaminated`), or a stage
    for all of its reasons (`quality`, `classifier`). An annotated stage still computes and stores its
    score on every document, so a steward can look at the distribution before choosing a cut, and
    `run --rethreshold` can later turn the cut on without recomputing anything.
    """
    if names is None:
        return frozenset()
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise UserError(f"{where} must be a list such as [perplexity, classifier:NAME], got {names!r}.")
    stages = {"quality": set(QUALITY_REASONS), "classifier": {c.reason for c in classifiers}}
    valid = {*QUALITY_REASONS, "perplexity", CONTAMINATED, *stages["classifier"]}
    out: set[str] = set()
    for name in names:
        if name in stages:
            out |= stages[name]
        elif name in valid:
            out.add(name)
        else:
            raise UserError(f"{where}: {name!r} is not a stage that rejects; valid: quality, classifier, "
                            f"{', '.join(sorted(valid))}.")
    return frozenset(out)


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
        self._cuts: dict[str, float | None] = {}
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
            verdict = doc.get("reject") or (self.cfg.url_rules.check(doc.get("url"))
                                            if self.cfg.url_rules is not None else None)
            if verdict:  # a web record that is no document (roots/io/web.py), or a URL rule
                self._reject(row, verdict[0], verdict[1])
                out.append(row)
                continue
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
            row["text"] = norm.normalise(row["text"], self.cfg.normalise_unicode)
        t2 = time.thread_time()
        self.timings["normalise"] += t2 - t1
        self._language(live)
        t3 = time.thread_time()
        self.timings["langid"] += t3 - t2
        for row in live:
            self._score(row)
        self._perplexity(live)
        self._classify(live)
        self._decontaminate(live)
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
            "perplexity": None, "ppl_status": None, SIGNALS: "", "pii": "", "cluster": None,
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

        The source's settings (`lid_after_word_removal`, `lid_paragraphs`) are read from the first declared
        language's parameters, or from `default` in a `multi` source, whose language is not known yet.
        """
        if not rows:
            return
        if "langid" in self.cfg.skip:
            for row in rows:
                row["lang_backend"] = "declared"
            return
        from roots.stages.routing import load_router, predict_paragraphs

        declared = self.cfg.declared
        source_params = self.params(declared[0] if declared else "und")
        if declared and source_params.lid_after_word_removal and "modify" not in self.cfg.skip:
            # ROOTS's order: the word removals of the target language, then language ID (idempotent, so
            # `_score` applying them again changes nothing)
            for row in rows:
                row["text"] = quality.modify_document(row["text"], source_params)
        router = load_router(self.cfg.langid_model, self.cfg.langid_routing)  # cached: once per worker
        texts = [r["text"] for r in rows]

        def lid_min(lang: str) -> float:
            return self.params(lang).lid_min

        decisions = (predict_paragraphs(router, texts, lid_min) if source_params.lid_paragraphs
                     else router.predict(texts, lid_min=lid_min))
        uncovered = [lang for lang in declared if not router.covers(lang)]
        for row, pred in zip(rows, decisions):
            row["lang_predicted"], row["lang_score"] = pred.lang, round(pred.score, 6)
            row["lang_backend"] = pred.backend
            self.language_verdict(row, uncovered)

    def language_verdict(self, row: dict[str, Any], uncovered: Sequence[str]) -> None:
        """Assign the language and reject on the stored prediction; shared with `--rethreshold`.

        In a source that declares its language, a document predicted in a declared language is kept
        whatever its score unless `lid_strict_declared` is set: the card already says what the language
        is, and on documentation, man pages or fortunes a correct prediction often scores 0.4-0.8. A
        document predicted in another language is still rejected.
        """
        declared = self.cfg.declared
        pred_lang, score, backend = row["lang_predicted"], float(row["lang_score"]), row["lang_backend"]
        if self.cfg.langid_hint and score < self.params(pred_lang).lid_min:
            hint = lang_hint(row.get("meta") or "")
            if hint is not None and (not declared or hint in declared):
                pred_lang, backend = hint, "html_lang"
                row["lang_backend"] = backend
                score = max(score, self.params(hint).lid_min)
        if not declared or pred_lang in declared:  # multi: language ID assigns the language
            row["lang"] = pred_lang
            params = self.params(pred_lang)
            need = params.lid_min
            if score < need and (not declared or params.lid_strict_declared):
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

    def _classify(self, rows: list[dict[str, Any]]) -> None:
        """Each active classifier scores the rows of its language in one batched call."""
        t0 = time.thread_time()
        if "classifier" not in self.cfg.skip:
            for spec in self.cfg.classifiers:
                mine = [r for r in rows if spec.applies(r["lang"])]
                scores = clf.load(spec.model_dir).scores([r["text"] for r in mine])
                for row, score in zip(mine, scores, strict=True):
                    set_signal(row, spec.column, score)
        self.timings["classifier"] += time.thread_time() - t0

    def _decontaminate(self, rows: list[dict[str, Any]]) -> None:
        """Record the evaluation sets each row shares an n-gram with (the verdict is `decide`'s)."""
        t0 = time.thread_time()
        if self.cfg.decontam_sets and "decontam" not in self.cfg.skip:
            found = decontam.matches_many([r["text"] for r in rows], self.cfg.decontam_sets)
            for row, hits in zip(rows, found, strict=True):
                if hits:
                    set_signal(row, "contamination", hits)
        self.timings["decontam"] += time.thread_time() - t0

    def classifier_cut(self, spec: clf.ClassifierSpec) -> float | None:
        """The minimum score of a classifier (absolute, or a percentile of its held-out positives)."""
        if spec.name not in self._cuts:
            meta = clf.read_meta(spec.model_dir) if spec.percentile is not None else None
            self._cuts[spec.name] = clf.cut_of(spec, meta)[0]
        return self._cuts[spec.name]

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
        annotate = self.cfg.annotate_only
        signals = signals_of(row)
        # only the sets registered now: a set removed from the workspace no longer rejects on --rethreshold
        active = {s.name for s in self.cfg.decontam_sets}
        hits = {k: v for k, v in (signals.get("contamination") or {}).items() if k in active}
        if hits and CONTAMINATED not in annotate:  # first: a benchmark leak is named whatever else fails
            self._reject(row, CONTAMINATED, decontam.detail(hits))
            return
        if "quality" not in self.cfg.skip:
            stats = {k: row[k] for k in STAT_FIELDS}
            reason, detail = quality.decide(stats, self.params(row["lang"]), annotate)
            if reason is not None:
                self._reject(row, reason, detail)
                return
        if row["perplexity"] is not None and "perplexity" not in annotate:
            limit = self.ppl_threshold(row["lang"])
            if limit is not None and not math.isnan(limit) and row["perplexity"] > limit:
                self._reject(row, "perplexity", f"perplexity={row['perplexity']:.1f} > max {limit:.1f}")
                return
        for spec in self.cfg.classifiers:
            score = signals.get(spec.column)
            if score is None or spec.reason in annotate:
                continue
            cut = self.classifier_cut(spec)
            if cut is not None and score < cut:
                self._reject(row, spec.reason, f"{spec.column}={score:.4f} < min {cut:.4f}")
                return
        row["status"] = "kept"


def lang_hint(meta: str) -> str | None:
    """The primary subtag of a page's HTML `lang` attribute (`pt-BR` -> `pt`), or None: the hint ROOTS's
    pseudo-crawl kept. Only well-formed ISO 639 codes count (`lang="x-default"` or `"{{lang}}"` do not)."""
    if '"html_lang"' not in meta:
        return None
    value = str(json.loads(meta).get("html_lang") or "")
    primary = value.replace("_", "-").split("-")[0].strip().lower()
    return primary if 2 <= len(primary) <= 3 and primary.isascii() and primary.isalpha() else None


def _with_meta(meta: str, key: str, value: Any) -> str:
    """Add one key to a row's JSON `meta` (an empty string when the record had no other fields)."""
    data = json.loads(meta) if meta else {}
    data[key] = value
    return json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)


def signals_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row's model signals (`schema.SIGNALS`), {} when it has none."""
    raw = row.get(SIGNALS)
    return json.loads(raw) if raw else {}


def set_signal(row: dict[str, Any], key: str, value: Any) -> None:
    row[SIGNALS] = json.dumps({**signals_of(row), key: value}, ensure_ascii=False, sort_keys=True)
