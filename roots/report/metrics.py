"""The per-document statistics the report charts, the filter (rejection reason) each one feeds, and the
thresholds a run applied to a language (`lang_params`, `ppl_limit`), read back from the run's manifest.

Kept apart from loading and drawing so that the list of metrics and how their thresholds are found can
change in one place; the page, `inspect` and the data cards all read thresholds from here.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roots.core.errors import UserError
from roots.stages import quality


def lang_params(manifest: Mapping[str, Any], lang: str) -> quality.LangParams | None:
    """Thresholds for `lang` as applied by the run recorded in `manifest` (None when they fail to load)."""
    thresholds = (manifest.get("config") or {}).get("thresholds") or {}
    overrides = {**(thresholds.get("default") or {}), **(thresholds.get(lang) or {})}
    try:
        return quality.load_params(lang, overrides or None)
    except UserError:
        return None


def ppl_limit(manifest: Mapping[str, Any], params: quality.LangParams) -> tuple[float | None, str]:
    """The perplexity cap and how it was set. A percentile cap is read from the model's calibration file
    (as `PerplexityModel.percentile_threshold` does) without loading KenLM; if the model is not on this
    machine the cap cannot be drawn and the text says so."""
    if params.ppl_percentile is None:
        return params.ppl_max, "max"
    lm_dir = (manifest.get("config") or {}).get("lm_dir")
    path = Path(str(lm_dir)) / params.lang / "calibration.json" if lm_dir else None
    if path is None or not path.is_file():
        return None, f"p{params.ppl_percentile:g} of calibration (model not found here)"
    table = (json.loads(path.read_text(encoding="utf-8")).get("percentiles") or {})
    points = sorted((float(k[1:]), float(v)) for k, v in table.items() if k.startswith("p"))
    if not points:
        return None, "percentile cap (calibration has no percentiles)"
    pct = params.ppl_percentile
    value = points[-1][1] if pct > points[-1][0] else points[0][1]
    for (p0, v0), (p1, v1) in itertools.pairwise(points):
        if p0 <= pct <= p1:
            value = v0 + (v1 - v0) * (pct - p0) / (p1 - p0) if p1 > p0 else v0
            break
    return value, f"max (p{pct:g})"


@dataclass(frozen=True)
class Metric:
    """A per-document statistic, the filter (reason) it feeds and how to read its threshold(s)."""

    column: str
    reason: str
    log: bool
    bounds: Callable[[quality.LangParams, Mapping[str, Any]], list[tuple[str, float]]]

    def marks(self, params: quality.LangParams | None,
              manifest: Mapping[str, Any]) -> list[tuple[str, float]]:
        if params is None:
            return []
        return [(k, float(v)) for k, v in self.bounds(params, manifest) if v is not None]


def _one(kind: str, attr: str) -> Callable[[quality.LangParams, Mapping[str, Any]], list[tuple[str, float]]]:
    return lambda p, m: [(kind, getattr(p, attr))]


def _stopword_bounds(p: quality.LangParams, m: Mapping[str, Any]) -> list[tuple[str, float]]:
    return [("min", p.stopwords_min)] if quality.has_stopwords(p.lang) else []


def _ppl_bounds(p: quality.LangParams, m: Mapping[str, Any]) -> list[tuple[str, float]]:
    value, kind = ppl_limit(m, p)
    return [(kind, value)] if value is not None else []


METRICS: tuple[Metric, ...] = (
    Metric("number_words", "word_count", True,
           lambda p, m: [("min", p.number_words_min), ("max", p.number_words_max)]),
    Metric("char_repetition_ratio", "char_repetition", False, _one("max", "char_repetition_max")),
    Metric("word_repetition_ratio", "word_repetition", False, _one("max", "word_repetition_max")),
    Metric("special_characters_ratio", "special_characters", False, _one("max", "special_characters_max")),
    Metric("stopwords_ratio", "stopwords", False, _stopword_bounds),
    Metric("flagged_words_ratio", "flagged_words", False, _one("max", "flagged_words_max")),
    Metric("lang_score", "language", False, _one("min", "lid_min")),
    Metric("perplexity", "perplexity", True, _ppl_bounds),
)
METRIC_BY_REASON = {m.reason: m for m in METRICS}
_SIZE_METRICS = {"bytes": Metric("n_bytes", "", True, lambda p, m: []),
                 "chars": Metric("n_chars", "", True, lambda p, m: [])}


def metric_for_reason(reason: str) -> Metric | None:
    """The statistic that explains a rejection: a quality filter's own statistic, the document size for
    the length cap and the size recipes, and nothing for duplicates (their evidence is the cluster)."""
    if reason in METRIC_BY_REASON:
        return METRIC_BY_REASON[reason]
    if reason.startswith("duplicate"):
        return None
    if reason.startswith("filter_small_docs_bytes"):
        return _SIZE_METRICS["bytes"]
    return _SIZE_METRICS["chars"]
