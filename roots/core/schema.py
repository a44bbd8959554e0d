"""Names every layer agrees on: the columns of a run's tables, the rejection reasons and the stage each
reason belongs to, and the key that names a document across sources.

Why a module of its own: storage (`roots.io`), the stages, the jobs and the report all need these names,
and before this module each imported them from whichever layer happened to define them first (storage
from the processor, the report from orchestration). Keeping them here, at the bottom, lets every layer
import them downward.
"""

from __future__ import annotations

from dataclasses import dataclass

STAGES = ("recipe", "normalise", "langid", "modify", "quality", "perplexity", "classifier", "decontam", "pii")
"""The per-document stages of a text source, in the order `roots.stages.process` runs them."""

@dataclass(frozen=True)
class Bound:
    """One threshold of a filter: keep a document when its statistic is >= (`min`) or <= (`max`) the value
    of the per-language parameter `field`. `kind` is the parameter's type: "int" limits cannot be null,
    "float" limits can (null switches that bound off)."""

    side: str
    field: str
    kind: str = "float"

    @property
    def nullable(self) -> bool:
        return self.kind != "int"


@dataclass(frozen=True)
class QualityFilter:
    """A quality filter, described once for everything that walks it.

    Computing (`roots.stages.quality.STATISTICS[column]`), deciding and re-thresholding, the per-language
    parameter table (`roots/data/filter_params.yaml`, one field per bound and setting), the run tables'
    columns, the report's histograms and the data card's threshold table all read this tuple, so a filter
    is added by writing its statistic, its descriptor here and its thresholds, and nothing else.

    - `reason`: the rejection reason a failing document gets.
    - `column`: the statistic, stored as a float column on every scored document.
    - `bounds`: its thresholds, checked in order (the first failing bound names the detail).
    - `settings`: (field, kind) parameters of how the statistic is measured (an n-gram length), in the
      same table; kinds as in `roots.stages.quality` ("n": a whole number >= 1, "bool").
    - `log_scale`: the report draws the statistic on a log axis (counts spanning decades).
    - `requires`: a per-language resource without which the filter is off for that language (e.g. a
      stop-word list); `roots.stages.quality.REQUIREMENTS` says which languages have it.
    - `label`: what the data card's threshold table calls it.
    """

    reason: str
    column: str
    label: str
    bounds: tuple[Bound, ...]
    settings: tuple[tuple[str, str], ...] = ()
    log_scale: bool = False
    requires: str | None = None


QUALITY_FILTERS: tuple[QualityFilter, ...] = (
    QualityFilter("word_count", "number_words", "words",
                  (Bound("min", "number_words_min", "int"), Bound("max", "number_words_max", "int")),
                  log_scale=True),
    QualityFilter("char_repetition", "char_repetition_ratio", "char repetition",
                  (Bound("max", "char_repetition_max"),),
                  settings=(("char_repetition_n", "n"), ("char_repetition_roots_compat", "bool"))),
    QualityFilter("word_repetition", "word_repetition_ratio", "word repetition",
                  (Bound("max", "word_repetition_max"),),
                  settings=(("word_repetition_n", "n"),)),
    QualityFilter("special_characters", "special_characters_ratio", "special chars",
                  (Bound("max", "special_characters_max"),)),
    QualityFilter("stopwords", "stopwords_ratio", "stop words", (Bound("min", "stopwords_min"),),
                  requires="stopwords"),
    QualityFilter("flagged_words", "flagged_words_ratio", "flagged words",
                  (Bound("max", "flagged_words_max"),)),
    # Not in ROOTS: Gopher's (Rae et al. 2021) mean word length bounds, 3 to 10 characters.
    QualityFilter("mean_word_length", "mean_word_length", "mean word length",
                  (Bound("min", "mean_word_length_min"), Bound("max", "mean_word_length_max"))),
)
"""The quality filters in ROOTS's order (the first failure wins); filters of our own come after ROOTS's."""

STAT_FIELDS = tuple(f.column for f in QUALITY_FILTERS)
"""The quality statistics stored on every scored document (one float column each)."""

CODE_STAT_FIELDS = ("max_line_length", "mean_line_length", "alphanum_fraction", "token_length_std")
"""The statistics of a code source's files (`roots.stages.code`), null for text sources."""

# Private columns of spill files (`roots.io.spill`), dropped before rows reach the outputs.
NODE, URL_KEY, URL_PARENT, SIG, EXACT = "_node", "_url_key", "_url_parent", "_sig", "_exact"
PRIVATE = (NODE, URL_KEY, URL_PARENT, SIG, EXACT)

QUALITY_REASONS = tuple(f.reason for f in QUALITY_FILTERS)
"""The reasons the quality filters give, in ROOTS's order (the first failure wins)."""

CODE_THRESHOLD_REASONS = ("code_max_line_length", "code_mean_line_length", "code_alphanum",
                          "code_token_length")
"""The code filters (`roots.stages.code`) that compare a stored statistic with a threshold."""

CLASSIFIER_PREFIX = "classifier:"
"""A quality classifier's reason is `classifier:NAME` (`roots.stages.classifier`); its score is stored as
`NAME_score` in the row's `signals`."""

WEB_REASONS = ("not_response", "http_status", "not_html", "no_main_text", "url_not_allowed", "url_blocked")
"""Web records that are not documents (`roots.io.web`: a request record, a 404 or redirect, an image or PDF,
a page with no main text) and the card's URL rules (`roots.io.urlrules`); never re-decided. Counted in the
`web` stage, before any text stage, so the per-stage table shows how much of a crawl was pages at all."""

CONTAMINATED = "contaminated"
"""The reason of a document sharing an n-gram with a registered evaluation set (`roots.stages.decontam`)."""

SIGNALS = "signals"
"""The column holding a row's model signals as a JSON object: `NAME_score` per quality classifier of its
language, and `contamination` ({set: matching n-gram}) when it overlaps an evaluation set. One JSON column
rather than one column per classifier, so the run tables, spill files and fragments keep one schema
whatever the workspace configures; `roots inspect`, the report and the data card show the scores by name."""

REDECIDED_REASONS = frozenset({"language", *QUALITY_REASONS, "perplexity", *CODE_THRESHOLD_REASONS,
                               CONTAMINATED})
"""Rejections that depend only on thresholds and stored statistics, so `run --rethreshold` re-decides
them (and every `classifier:NAME`, see `redecided`); every other reason (recipe, length cap, dedup,
quarantine) stands."""


def redecided(reason: str | None) -> bool:
    """Whether `run --rethreshold` decides a rejection with this reason again from stored values."""
    return reason is not None and (reason in REDECIDED_REASONS or reason.startswith(CLASSIFIER_PREFIX))


STAGE_ORDER = ("web", "length_cap", "recipe", "langid", "decontam", "quality", "perplexity", "classifier",
               "dedup")
"""The stages that remove documents, in pipeline order, as the per-stage counts list them."""


def stage_of(reason: str) -> str:
    """Which pipeline stage a rejection reason belongs to, for the per-stage counts."""
    if reason == "too_long":
        return "length_cap"
    if reason in WEB_REASONS:
        return "web"
    if reason in QUALITY_REASONS:
        return "quality"
    if reason.startswith("code_"):  # roots.stages.code's filters are a code source's quality stage
        return "quality"
    if reason.startswith(CLASSIFIER_PREFIX):
        return "classifier"
    if reason == CONTAMINATED:
        return "decontam"
    if reason in ("language", "perplexity"):
        return {"language": "langid", "perplexity": "perplexity"}[reason]
    if reason.startswith("duplicate"):
        return "dedup"
    return "recipe"


def doc_key(source: str, doc_id: str) -> str:
    """A document's identity across sources (ids are unique only within a source)."""
    return f"{source}\x1f{doc_id}"
