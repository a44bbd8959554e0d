"""The per-document statistics the report charts, the filter (rejection reason) each one feeds, and the
thresholds a run applied to a language (`lang_params`, `ppl_limit`), read back from the run's manifest.

Kept apart from loading and drawing so that the list of metrics and how their thresholds are found can
change in one place; the page, `inspect` and the data cards all read thresholds from here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from roots.core.errors import UserError
from roots.core.schema import QUALITY_FILTERS, QualityFilter
from roots.report.fmt import fmt_num
from roots.stages import perplexity, quality


def lang_params(manifest: Mapping[str, Any], lang: str) -> quality.LangParams | None:
    """Thresholds for `lang` as applied by the run recorded in `manifest` (None when they fail to load),
    through the pipeline's own resolution (`quality.resolve_params`)."""
    try:
        return quality.resolve_params(lang, (manifest.get("config") or {}).get("thresholds"))
    except UserError:
        return None


def threshold_origin(manifest: Mapping[str, Any], lang: str) -> str:
    """Whether `lang`'s thresholds in this run were ROOTS's, calibrated or `default`
    (`quality.threshold_origin`), with "+ overrides" when the card or roots.yaml changed some of them."""
    cfg = manifest.get("config") or {}
    origin = quality.threshold_origin(lang, cfg.get("calibrated") or ())
    overrides = (cfg.get("thresholds") or {}).get(lang)
    return f"{origin} + overrides" if overrides and origin != "calibrated" else origin


def ppl_limit(manifest: Mapping[str, Any], params: quality.LangParams) -> tuple[float | None, str]:
    """The perplexity cap and how it was set, as the pipeline applied it (`perplexity.ppl_cap`). A
    percentile cap is read from the model's calibration file without loading KenLM; if the model is not
    on this machine the cap cannot be drawn and the text says so."""
    lm_dir = (manifest.get("config") or {}).get("lm_dir")
    return perplexity.ppl_cap(params, perplexity.read_calibration(lm_dir, params.lang))


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


def _filter_bounds(
        f: QualityFilter) -> Callable[[quality.LangParams, Mapping[str, Any]], list[tuple[str, float]]]:
    """A registered filter's thresholds for a language, none where the filter does not apply."""
    return lambda p, m: ([(b.side, getattr(p, b.field)) for b in f.bounds] if quality.applies(f, p)
                         else [])


def _ppl_bounds(p: quality.LangParams, m: Mapping[str, Any]) -> list[tuple[str, float]]:
    value, kind = ppl_limit(m, p)
    return [(kind, value)] if value is not None else []


METRICS: tuple[Metric, ...] = (
    *(Metric(f.column, f.reason, f.log_scale, _filter_bounds(f)) for f in QUALITY_FILTERS),
    Metric("lang_score", "language", False, _one("min", "lid_min")),
    Metric("perplexity", "perplexity", True, _ppl_bounds),
)
"""Every registered quality filter's statistic, then the language-ID score and the perplexity."""
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


def threshold_text(f: QualityFilter, params: quality.LangParams, span: str = "..") -> str | None:
    """A filter's thresholds for one language as text ("10..100000", "0.2 (n=10)", "off"), or None when
    the language lacks what the filter requires (a stop-word list). Two bounds read min`span`max."""
    if not quality.applies(f, params):
        return None
    limits = [(b, getattr(params, b.field)) for b in f.bounds]
    shown = [(b.side, str(v) if b.kind == "int" else fmt_num(v)) for b, v in limits if v is not None]
    if not shown:
        return "off"
    if len(shown) == len(limits):  # every bound on: "min..max", or a single bound's value
        text = span.join(v for _, v in shown)
    else:  # one of two switched off: "min 3"
        text = " ".join(shown[0])
    sizes = [f"n={getattr(params, name)}" for name, kind in f.settings if kind == "n"]  # n-gram lengths
    return f"{text} ({', '.join(sizes)})" if sizes else text
