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
        scale = 1000 if bound.kind == "int" else 1
        value, limit = (0.6 * scale, 0.3 * scale) if bound.side == "max" else (0.01 * scale, 0.3 * scale)
        failing = quality.load_params("en", {bound.field: int(limit) if scale > 1 else limit})
        reason, detail = quality.decide({**stats, f.column: value}, failing)
        assert reason == f.reason and detail.startswith(f"{f.column}=") and f" {bound.side} " in detail


def test_a_filter_without_a_statistic_is_caught_at_import() -> None:
    orphan = QualityFilter("orphan", "orphan_ratio", (Bound("max", "orphan_max"),), requires="nothing")
    assert quality.registry_gaps((*QUALITY_FILTERS, orphan)) == ["nothing", "orphan_ratio"]
    assert quality.registry_gaps(QUALITY_FILTERS) == []


def test_resolution_layers_table_default_and_language_overrides() -> None:
    thresholds = quality.merge_overrides({"default": {"number_words_min": 3}, "fr": {"stopwords_min": 0.2}},
                                         {"fr": {"number_words_min": 7}})
    fr, en = quality.resolve_params("fr", thresholds), quality.resolve_params("en", thresholds)
    assert (fr.number_words_min, fr.stopwords_min) == (7, 0.2)
    assert en.number_words_min == 3 and en.stopwords_min == quality.load_params("en").stopwords_min
    assert quality.resolve_params("de", None) == quality.load_params("de")
