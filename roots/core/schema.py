"""Names every layer agrees on: the columns of a run's tables, the rejection reasons and the stage each
reason belongs to, and the key that names a document across sources.

Why a module of its own: storage (`roots.io`), the stages, the jobs and the report all need these names,
and before this module each imported them from whichever layer happened to define them first (storage
from the processor, the report from orchestration). Keeping them here, at the bottom, lets every layer
import them downward.
"""

from __future__ import annotations

STAGES = ("recipe", "normalise", "langid", "modify", "quality", "perplexity", "pii")
"""The per-document stages of a text source, in the order `roots.stages.process` runs them."""

STAT_FIELDS = ("number_words", "char_repetition_ratio", "word_repetition_ratio", "special_characters_ratio",
               "stopwords_ratio", "flagged_words_ratio")
"""The quality statistics stored on every scored document (one float column each)."""

CODE_STAT_FIELDS = ("max_line_length", "mean_line_length", "alphanum_fraction", "token_length_std")
"""The statistics of a code source's files (`roots.stages.code`), null for text sources."""

# Private columns of spill files (`roots.io.spill`), dropped before rows reach the outputs.
NODE, URL_KEY, URL_PARENT, SIG, EXACT = "_node", "_url_key", "_url_parent", "_sig", "_exact"
PRIVATE = (NODE, URL_KEY, URL_PARENT, SIG, EXACT)

QUALITY_REASONS = ("word_count", "char_repetition", "word_repetition", "special_characters", "stopwords",
                   "flagged_words")
"""The reasons the quality filters give, in ROOTS's order (the first failure wins)."""

STAGE_ORDER = ("length_cap", "recipe", "langid", "quality", "perplexity", "dedup")
"""The stages that remove documents, in pipeline order, as the per-stage counts list them."""


def stage_of(reason: str) -> str:
    """Which pipeline stage a rejection reason belongs to, for the per-stage counts."""
    if reason == "too_long":
        return "length_cap"
    if reason in QUALITY_REASONS:
        return "quality"
    if reason.startswith("code_"):  # roots.stages.code's filters are a code source's quality stage
        return "quality"
    if reason in ("language", "perplexity"):
        return {"language": "langid", "perplexity": "perplexity"}[reason]
    if reason.startswith("duplicate"):
        return "dedup"
    return "recipe"


def doc_key(source: str, doc_id: str) -> str:
    """A document's identity across sources (ids are unique only within a source)."""
    return f"{source}\x1f{doc_id}"
