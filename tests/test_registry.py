"""The quality-filter registry (`roots.core.schema.QUALITY_FILTERS`) is the one list every consumer walks:
the stored columns, the parameter table, computing, deciding, re-thresholding, the report and the data
card. These tests fail when any consumer falls out of step with it, instead of a filter silently being
computed and never applied, applied and never shown, or shown and never re-decided."""

from __future__ import annotations

import math
from importlib import resources

import pyarrow as pa
import pytest
import yaml

from roots.core import schema
from roots.core.schema import QUALITY_FILTERS, REDECIDED_REASONS, Bound, QualityFilter
from roots.io import outputs
from roots.stages import quality

TEXT = ("The quick brown fox jumps over the lazy dog while the farmer watches from the gate and the "
        "children laugh at the dog because it is a very lazy dog indeed.")


def test_every_statistic_is_a_float_column_of_the_run_tables() -> None:
    for kind in ("kept", "rejected"):
        for f in QUALITY_FILTERS:
            assert outputs.SCHEMAS[kind].field(f.column).type == pa.float64(), (kind, f.column)


def test_reasons_belong_to_the_quality_stage_and_are_redecided() -> None:
    assert len({f.reason for f in QUALITY_FILTERS}) == len(QUALITY_FILTERS)
    assert len({f.column for f in QUALITY_FILTERS}) == len(QUALITY_FILTERS)
    for f in QUALITY_FILTERS:
        assert schema.stage_of(f.reason) == "quality"
        assert f.reason in REDECIDED_REASONS


def test_every_bound_and_setting_has_a_default_in_the_parameter_table() -> None:
    table = yaml.safe_load(resources.files("roots").joinpath(quality.PARAMS_FILE).read_text("utf-8"))
    for f in QUALITY_FILTERS:
        for name in [b.field for b in f.bounds] + [name for name, _ in f.settings]:
            assert name in table["default"], name
            assert name in quality.PARAM_KEYS
            assert hasattr(quality.load_params("en"), name)


def test_compute_stats_returns_exactly_the_registered_columns() -> None:
    stats = quality.compute_stats(TEXT, "en", quality.load_params("en"))
    assert tuple(stats) == schema.STAT_FIELDS == tuple(f.column for f in QUALITY_FILTERS)
    assert all(isinstance(v, float) and not math.isnan(v) for v in stats.values())


@pytest.mark.parametrize("f", QUALITY_FILTERS, ids=lambda f: f.reason)
def test_each_bound_rejects_with_its_reason(f: QualityFilter) -> None:
    """For every bound of every filter, a statistic beyond its threshold makes `decide` name that filter
    and that side: the decision walks the registry, bound by bound."""
    params = quality.load_params("en")
    stats = quality.compute_stats(TEXT, "en", params)
    assert quality.decide(stats, params) == (None, "")
    for bound in f.bounds:
        # the bound under test fails at 5; the filter's other bounds are set wide open
        overrides: dict[str, float] = {}
        for other in f.bounds:
            wide = 0 if other.side == "min" else 10**6
            tight = 2 if bound.side == "max" else 8
            overrides[other.field] = tight if other is bound else wide
        reason, detail = quality.decide({**stats, f.column: 5.0}, quality.load_params("en", overrides))
        assert reason == f.reason and detail.startswith(f"{f.column}=") and f" {bound.side} " in detail


def test_a_filter_without_a_statistic_is_caught_at_import() -> None:
    orphan = QualityFilter("orphan", "orphan_ratio", "orphan", (Bound("max", "orphan_max"),),
                           requires="nothing")
    assert quality.registry_gaps((*QUALITY_FILTERS, orphan)) == ["nothing", "orphan_ratio"]
    assert quality.registry_gaps(QUALITY_FILTERS) == []


def test_resolution_layers_table_default_and_language_overrides() -> None:
    thresholds = quality.merge_overrides({"default": {"number_words_min": 3}, "fr": {"stopwords_min": 0.2}},
                                         {"fr": {"number_words_min": 7}})
    fr, en = quality.resolve_params("fr", thresholds), quality.resolve_params("en", thresholds)
    assert (fr.number_words_min, fr.stopwords_min) == (7, 0.2)
    assert en.number_words_min == 3 and en.stopwords_min == quality.load_params("en").stopwords_min
    assert quality.resolve_params("de", None) == quality.load_params("de")


def test_the_report_and_the_data_card_show_every_filter() -> None:
    from roots.report import datacard, metrics

    assert [m.column for m in metrics.METRICS][: len(QUALITY_FILTERS)] == [f.column for f in QUALITY_FILTERS]
    assert all(metrics.METRIC_BY_REASON[f.reason].column == f.column for f in QUALITY_FILTERS)
    manifest = {"config": {"thresholds": {"default": {"mean_word_length_min": None,
                                                      "mean_word_length_max": None}}}}
    table = datacard.thresholds_table({"languages": {"en": {}, "zh": {}}}, manifest)
    header, _, en_row, zh_row = table.splitlines()[:4]
    for f in QUALITY_FILTERS:
        assert f.label in header
    assert "10–100000" not in en_row and "20–100000" in en_row  # en's own word-count row
    assert "3–10" not in en_row and "| off |" in en_row and "| off |" in zh_row  # null bounds read "off"
    mwl = next(f for f in QUALITY_FILTERS if f.reason == "mean_word_length")
    assert metrics.threshold_text(mwl, quality.load_params("en")) == "3..10"
    assert metrics.threshold_text(mwl, quality.load_params("en", {"mean_word_length_max": None})) == "min 3"
    en = quality.load_params("en")
    assert metrics.threshold_text(QUALITY_FILTERS[0], en) == "20..100000"
    assert metrics.threshold_text(QUALITY_FILTERS[1], en) == "0.106 (n=10)"  # ROOTS's en row
