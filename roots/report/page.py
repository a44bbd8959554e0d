"""`roots report` and `roots inspect`: look at what a run kept, removed and why, without leaving the machine.

`build_report` writes one self-contained `report.html` (inline CSS and SVG, no script, no network) for a run
directory, a runs root holding several, or a release directory. It is what a data steward opens to decide
whether a threshold is right, so every chart is drawn from the stored per-document statistics with the
threshold that was actually applied, and every removal can be traced to example documents.

Documents are hostile input: every string that comes from the data (text, ids, URLs, details, error
messages) goes through `html.escape`, and a Content-Security-Policy forbids scripts and remote loads in case
one ever slips through. The output is deterministic (same input, same bytes): rows are ordered by id,
samples are chosen by distance to the threshold with ids breaking ties, and the only times shown are the
ones recorded in the manifests, so a report can be diffed between two runs.

Memory is bounded, not proportional to the corpus (the merge renders a release's report, and its peak must
not follow the corpus). The per-document views of a run (statistics per language, removed-versus-kept
samples, duplicate clusters) are drawn from at most `REPORT_MAX_DOCS` of its documents (`read_docs`):
every document when the run has no more, otherwise a bottom-k sample, the ones whose id has the smallest
8-byte blake2b digest (`doc_key`), chosen while kept and rejected Parquet files stream past in record
batches, so the choice depends only on the ids, never on file layout or order. Such a section says it
was drawn from a sample ("drawn from a deterministic sample of 100,000 of 1,234,567 documents"), and every
count the report prints stays exact: it comes from the run's stats.json or from `Totals`, counted over all
documents in the same pass (their size follows the number of languages, reasons and backends). Runs are
rendered one at a time and each run's documents are dropped before the next run's are read
(`RunData.release_docs`), so the bound is about `REPORT_MAX_DOCS` x ~1 KB (~100 MB) per report, plus one
record batch and one Parquet row group; a run under the cap gives exactly the page it gave before the cap
existed. `inspect` streams the same way and holds only the `n` documents it shows, and the quarantine
section only its counts per error message and the first 10 records.
"""

from __future__ import annotations

import hashlib
import heapq
import html
import itertools
import json
import math
import re
import textwrap
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from roots.core.errors import UserError
from roots.core.schema import STAT_FIELDS, stage_of
from roots.core.yamlio import atomic_write_text
from roots.io import outputs
from roots.release.parts import group_of
from roots.stages import quality

REPORT_NAME = "report.html"
SAMPLES_PER_REASON = 3
SAMPLE_CHARS = 600
INSPECT_CHARS = 300
HIST_BINS = 24
TOP_CLUSTERS = 10
STAGE_ORDER = ("length_cap", "recipe", "langid", "quality", "perplexity", "dedup")

_NUMERIC = ("lang_score", "n_chars", "n_bytes", *STAT_FIELDS, "perplexity")
_STRINGS = ("id", "lang", "lang_predicted", "lang_backend", "ppl_status", "pii", "cluster")
_DOC_COLUMNS = ["id", "lang", "lang_score", "lang_predicted", "lang_backend", "n_chars", "n_bytes",
                *STAT_FIELDS, "perplexity", "ppl_status", "pii", "cluster"]
_SAMPLE_COLUMNS = [*_DOC_COLUMNS, "reason", "detail", "status"]
# Documents per run that the per-document views (statistics, samples, duplicates, language ID) are drawn
# from: at ~1 KB each, the report's peak memory is about REPORT_MAX_DOCS x 1 KB whatever the run's size.
REPORT_MAX_DOCS = 100_000
_BATCH_ROWS = 4096


# ============================================================================================ loading
def is_run_dir(path: Path) -> bool:
    """A finished source run: `run_source` writes both files only after the accounting check passed."""
    return (path / "stats.json").is_file() and (path / "manifest.json").is_file()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc}); re-run the source to rewrite it.") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object.")
    return data


@dataclass
class Docs:
    """Kept and rejected documents of one run without their text, ordered by id (then kept first): all of
    them, or a deterministic sample of `REPORT_MAX_DOCS` (see `read_docs`) with exact `totals`.

    Text is the bulk of a run and is only needed for a handful of samples, so it is read separately
    (`fetch_texts`) for the ids a section chose.
    """

    ids: np.ndarray
    status: np.ndarray
    reason: np.ndarray
    detail: np.ndarray
    strings: dict[str, np.ndarray]
    numbers: dict[str, np.ndarray]
    total: int = -1  # documents in the run; -1: not recorded, take `len(self)`
    totals: Totals | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def sampled(self) -> bool:
        """Whether these are fewer than the run's documents (sections then take counts from `totals`)."""
        return self.totals is not None and self.total > len(self.ids)

    def sample_note(self) -> str:
        """The sentence a section drawn from these documents prints when they are a sample ("" if not)."""
        if not self.sampled:
            return ""
        return (f'<p class="warn">Drawn from a deterministic sample of {len(self):,} of {self.total:,} documents '
                "(those with the smallest blake2b hash of the id); counts given as totals are exact.</p>")

    @cached_property
    def by_lang(self) -> dict[str, np.ndarray]:
        """Row indices per language, largest language first (then by code) so the order is stable."""
        langs = self.strings["lang"]
        groups: dict[str, list[int]] = {}
        for i, lang in enumerate(langs):
            groups.setdefault(str(lang or "und"), []).append(i)
        order = sorted(groups, key=lambda lang: (-len(groups[lang]), lang))
        return {lang: np.asarray(groups[lang], dtype=np.int64) for lang in order}


def _with_columns(table: pa.Table, status: str) -> pa.Table:
    n = table.num_rows
    if "reason" not in table.column_names:
        table = table.append_column("reason", pa.nulls(n, pa.string()))
        table = table.append_column("detail", pa.nulls(n, pa.string()))
    return table.append_column("status", pa.array([status] * n, pa.string()))


def doc_key(doc_id: str) -> int:
    """The sampling key of a document: its id's 8-byte blake2b digest as an unsigned integer.

    A function of the id alone, so the sample does not depend on how the run split its output into files,
    on their order, or on the Python process (unlike `hash`)."""
    return int.from_bytes(hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest(), "big")


def _doc_batches(run_dir: Path) -> Iterator[pa.Table]:
    """Kept then rejected documents (no text) in record batches, with `reason`, `detail` and `status`.

    Streamed rather than read whole (`outputs.read_kind`) so that memory follows the batch, not the run;
    `pre_buffer=False` and no reader threads, since either loads far more than one batch ahead."""
    for kind, columns in (("kept", _DOC_COLUMNS), ("rejected", [*_DOC_COLUMNS, "reason", "detail"])):
        empty = outputs.SCHEMAS[kind].empty_table().select(columns)
        yield _with_columns(empty, kind).select(_SAMPLE_COLUMNS)  # gives the schema when there are no files
        for path in sorted((run_dir / kind).glob("*.parquet")):
            for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(
                    batch_size=_BATCH_ROWS, columns=columns, use_threads=False):
                yield _with_columns(pa.Table.from_batches([batch]), kind).select(_SAMPLE_COLUMNS)


@dataclass
class Totals:
    """Exact counts over every document of a run, kept while the documents themselves are sampled.

    Every key is a language, a predicted language, a backend, a status or a reason, so this grows with the
    number of languages and filters, never with the number of documents."""

    documents: int = 0
    by_lang: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (lang, status, reason)
    bytes_by_lang: Counter[str] = field(default_factory=Counter)
    predicted: Counter[tuple[str, str | None, bool]] = field(default_factory=Counter)  # (lang, pred, kept)
    backends: Counter[str] = field(default_factory=Counter)
    pii_kept: int = 0

    def add(self, batch: pa.Table) -> None:
        """Fold one record batch in (grouped in Arrow, so no Python object per document)."""
        self.documents += batch.num_rows
        if not batch.num_rows:
            return
        lang = batch.column("lang").fill_null("und")
        lang = pc.if_else(pc.equal(lang, ""), "und", lang)
        reason = batch.column("reason").fill_null("")
        status = batch.column("status")
        grouped = pa.table({"lang": lang, "status": status, "reason": reason,
                            "b": batch.column("n_bytes").cast(pa.float64())}).group_by(["lang", "status", "reason"])
        for row in grouped.aggregate([([], "count_all"), ("b", "sum")]).to_pylist():
            self.by_lang[(row["lang"], row["status"], row["reason"])] += int(row["count_all"])
            self.bytes_by_lang[row["lang"]] += float(row["b_sum"] or 0.0)
        kept = pc.equal(status, "kept")
        grouped = pa.table({"lang": lang, "pred": batch.column("lang_predicted"), "kept": kept}).group_by(["lang", "pred", "kept"])
        for row in grouped.aggregate([([], "count_all")]).to_pylist():
            self.predicted[(row["lang"], row["pred"], bool(row["kept"]))] += int(row["count_all"])
        backend = batch.column("lang_backend").fill_null("none")
        backend = pc.if_else(pc.equal(backend, ""), "none", backend)
        for row in pa.table({"b": backend}).group_by("b").aggregate([("b", "count")]).to_pylist():
            self.backends[row["b"]] += int(row["b_count"])
        pii = batch.column("pii")
        has_pii = pc.and_(kept, pc.fill_null(pc.greater(pc.utf8_length(pii.fill_null("")), 0), False))
        self.pii_kept += int(pc.sum(pc.cast(has_pii, pa.int64())).as_py() or 0)

    def lang_counts(self, lang: str) -> tuple[int, int, Counter[str]]:
        """(kept, rejected, removals per reason) of one language."""
        kept, rejected, reasons = 0, 0, Counter[str]()
        for (lg, status, reason), n in self.by_lang.items():
            if lg != lang:
                continue
            if status == "kept":
                kept += n
            else:
                rejected += n
                if reason:
                    reasons[reason] += n
        return kept, rejected, reasons

    def reason_count(self, test: Callable[[str], bool]) -> int:
        return sum(n for (_lang, _status, reason), n in self.by_lang.items() if reason and test(reason))


class _Smallest:
    """The `k` rows smallest by `order` (columns, ascending) of the batches streamed past, in O(k) memory.

    Rows pile up to max(2k, `_BATCH_ROWS`) before one sort cuts them back to k; once k rows are held, a
    batch's rows above the current k-th value of the first column are dropped before they are stored.
    `table()` gives the rows in input order when nothing had to be cut."""

    def __init__(self, k: int, order: Sequence[str]) -> None:
        self.k, self.order = k, list(order)
        self.parts: list[pa.Table] = []
        self.rows = 0
        self.cut: pa.Scalar | None = None

    def add(self, batch: pa.Table) -> None:
        if self.cut is not None:
            batch = batch.filter(pc.less_equal(batch.column(self.order[0]), self.cut))
        self.parts.append(batch)
        self.rows += batch.num_rows
        if self.rows > max(2 * self.k, _BATCH_ROWS):
            self._cut()

    def _cut(self) -> None:
        table = pa.concat_tables(self.parts).sort_by([(name, "ascending") for name in self.order])
        table = table.slice(0, self.k).combine_chunks()
        self.parts, self.rows = [table], table.num_rows
        if self.k and table.num_rows == self.k:
            self.cut = table.column(self.order[0])[self.k - 1]

    def table(self) -> pa.Table:
        if self.rows > self.k:
            self._cut()
        return pa.concat_tables(self.parts)


def _with_doc_key(batch: pa.Table) -> pa.Table:
    ids = batch.column("id").to_pylist()
    keys = np.fromiter((doc_key(str(i)) for i in ids), dtype=np.uint64, count=len(ids))
    return batch.append_column("_key", pa.array(keys, pa.uint64()))


def read_docs(run_dir: Path, max_docs: int | None = None) -> Docs:
    """Kept and rejected documents' metadata and statistics (no text), sorted by (id, status): all of them
    when the run has at most `max_docs` (default `REPORT_MAX_DOCS`), else the `max_docs` with the smallest
    `doc_key`, with exact `Totals` over all of them. Peak memory follows `max_docs`, not the run."""
    k = REPORT_MAX_DOCS if max_docs is None else max(0, int(max_docs))
    sample, totals = _Smallest(k, ["_key", "id", "status"]), Totals()
    for batch in _doc_batches(run_dir):
        totals.add(batch)
        sample.add(_with_doc_key(batch))
    return _to_docs(sample.table().drop_columns(["_key"]), totals)


def _to_docs(table: pa.Table, totals: Totals | None = None) -> Docs:
    """`Docs` from a table of `_SAMPLE_COLUMNS` rows, sorted by (id, status)."""
    table = table.sort_by([("id", "ascending"), ("status", "ascending")])

    def objects(name: str) -> np.ndarray:
        """The column as Python objects, each distinct value one object shared by its rows: status,
        reason, language and the like repeat, and a str per row cost ~60 bytes where a reference is 8."""
        column = table.column(name)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            return np.asarray(column.to_pylist(), dtype=object)
        encoded = column.combine_chunks().dictionary_encode()
        values = np.empty(len(encoded.dictionary) + 1, dtype=object)  # the last slot is null
        values[:-1] = encoded.dictionary.to_pylist()
        return values[encoded.indices.fill_null(len(encoded.dictionary)).to_numpy(zero_copy_only=False)]

    numbers = {}
    for name in _NUMERIC:
        col = table.column(name).cast(pa.float64())
        numbers[name] = col.to_numpy(zero_copy_only=False).astype(np.float64) if len(col) else np.zeros(0)
    ids = np.asarray(table.column("id").to_pylist(), dtype=object)  # unique: nothing to share
    return Docs(ids=ids, status=objects("status"), reason=objects("reason"), detail=objects("detail"),
                strings={name: ids if name == "id" else objects(name) for name in _STRINGS}, numbers=numbers,
                total=totals.documents if totals is not None else len(ids), totals=totals)


def fetch_texts(run_dir: Path, ids: Iterable[str]) -> dict[str, str]:
    """Text of the given ids from kept and rejected shards; only matching rows are materialised."""
    wanted = sorted({str(i) for i in ids})
    found: dict[str, str] = {}
    if not wanted:
        return found
    for kind in ("kept", "rejected"):
        for path in sorted((run_dir / kind).glob("*.parquet")):
            # One row group at a time, text only where an id matched: a filtered `read_table` decodes the
            # whole file's text column first, so the report's memory followed the size of the shards.
            pf = pq.ParquetFile(path, pre_buffer=False)
            for i in range(pf.num_row_groups):
                ids = pf.read_row_group(i, columns=["id"]).column("id")
                hit = pc.is_in(ids, value_set=pa.array(wanted, ids.type))
                if not pc.any(hit).as_py():
                    continue
                table = pf.read_row_group(i, columns=["id", "text"]).filter(hit)
                for doc_id, text in zip(table.column("id").to_pylist(), table.column("text").to_pylist()):
                    found.setdefault(doc_id, text or "")
    return found


def kept_bytes_by_lang(run_dir: Path) -> dict[str, int]:
    """UTF-8 bytes of kept text per language, one record batch at a time (memory does not follow the shard)."""
    totals: Counter[str] = Counter()
    for path in sorted((run_dir / "kept").glob("*.parquet")):
        # pre_buffer=False: the default loads every row group's text before the first batch
        for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=2048, columns=["lang", "text"],
                                                                         use_threads=False):
            _add_bytes_by_lang(totals, pa.Table.from_batches([batch]))
    return dict(sorted(totals.items()))


def _add_bytes_by_lang(totals: Counter[str], table: pa.Table) -> None:
    if not table.num_rows:
        return
    sizes = pc.binary_length(table.column("text")).fill_null(0)
    grouped = pa.table({"lang": table.column("lang").fill_null("und"), "n": sizes}).group_by("lang")
    for row in grouped.aggregate([("n", "sum")]).to_pylist():
        totals[row["lang"]] += int(row["n_sum"])


@dataclass
class RunData:
    """One run directory with everything the report needs, loaded lazily."""

    dir: Path
    stats: dict[str, Any]
    manifest: dict[str, Any]
    _params: dict[str, quality.LangParams | None] = field(default_factory=dict)
    _marks: dict[tuple[str, str], list[tuple[str, float]]] = field(default_factory=dict)
    max_docs: int | None = None  # cap on `docs` (None: REPORT_MAX_DOCS)

    @classmethod
    def load(cls, run_dir: Path, max_docs: int | None = None) -> RunData:
        if not is_run_dir(run_dir):
            raise UserError(f"{run_dir}: not a finished run directory (no stats.json and manifest.json); "
                            "run the source with `roots run NAME` first.")
        return cls(run_dir, _read_json(run_dir / "stats.json"), _read_json(run_dir / "manifest.json"),
                   max_docs=max_docs)

    @property
    def name(self) -> str:
        return str(self.stats.get("source") or self.manifest.get("source") or self.dir.name)

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.manifest.get("config") or {})

    @cached_property
    def docs(self) -> Docs:
        return read_docs(self.dir, self.max_docs)

    def release_docs(self) -> None:
        """Drop `docs` once this run's sections are rendered, so a release report holds one run's documents
        at a time rather than every run's (reading them again is what a later access costs)."""
        self.__dict__.pop("docs", None)

    @cached_property
    def kept_bytes(self) -> dict[str, int]:
        return kept_bytes_by_lang(self.dir)

    def params(self, lang: str) -> quality.LangParams | None:
        """The thresholds the run applied to `lang`: the table row plus the manifest's recipe overrides,
        merged exactly as `DocumentProcessor.params` does. None if the overrides no longer validate."""
        if lang not in self._params:
            self._params[lang] = lang_params(self.manifest, lang)
        return self._params[lang]

    def marks(self, metric: Metric, lang: str) -> list[tuple[str, float]]:
        """`metric`'s thresholds for `lang`, cached: sample selection asks once per rejected document."""
        key = (metric.column, lang)
        if key not in self._marks:
            self._marks[key] = metric.marks(self.params(lang), self.manifest)
        return self._marks[key]

    def skipped(self, stage: str) -> bool:
        return stage in (self.config.get("skip") or [])


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


# ============================================================================================ metrics
@dataclass(frozen=True)
class Metric:
    """A per-document statistic, the filter (reason) it feeds and how to read its threshold(s)."""

    column: str
    reason: str
    log: bool
    bounds: Callable[[quality.LangParams, Mapping[str, Any]], list[tuple[str, float]]]

    def marks(self, params: quality.LangParams | None, manifest: Mapping[str, Any]) -> list[tuple[str, float]]:
        return [] if params is None else [(k, float(v)) for k, v in self.bounds(params, manifest) if v is not None]


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


def _t(values: np.ndarray, log: bool) -> np.ndarray:
    return np.log10(1.0 + np.maximum(values, 0.0)) if log else values


# ============================================================================================ HTML helpers
def esc(value: Any) -> str:
    """Escape anything for HTML text and attribute values (quotes included)."""
    return html.escape("" if value is None else str(value), quote=True)


def slug(value: str) -> str:
    """An id-safe anchor for a source name (names are validated, but anchors must never carry markup)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", value).strip("-") or "x"


def fmt_int(n: Any) -> str:
    return "–" if n is None else f"{int(n):,}"


def fmt_num(x: Any) -> str:
    """Compact, stable number formatting for statistics (4 significant digits)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    x = float(x)
    return f"{x:.0f}" if x.is_integer() and abs(x) < 1e9 else f"{x:.4g}"


def fmt_bytes(n: Any) -> str:
    if n is None:
        return "–"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def pct(part: float, whole: float) -> str:
    return "–" if not whole else f"{100.0 * part / whole:.1f}%"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = (),
          cls: str = "") -> str:
    """An HTML table; every cell is escaped unless it is a `Raw` value produced by this module."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            content = cell.html if isinstance(cell, Raw) else esc(cell)
            cells.append(f'<td class="n">{content}</td>' if i in numeric else f"<td>{content}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        body = [f'<tr><td colspan="{len(headers)}" class="muted">none</td></tr>']
    cls_attr = f' class="{cls}"' if cls else ""
    return f"<table{cls_attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


@dataclass(frozen=True)
class Raw:
    """Markup built (and escaped) by this module, passed through `table` unchanged."""

    html: str


def section(anchor: str, title: str, body: str, level: int = 3) -> str:
    return f'<section id="{esc(anchor)}"><h{level}>{esc(title)}</h{level}>{body}</section>'


# ============================================================================================ SVG
_SVG_W, _SVG_H = 300, 150
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 34, 16, 20, 26
_FAR = 10.0  # a threshold more than this many times the largest value is noted, not drawn to scale


def _nice_step(span: float) -> float:
    """A 1/2/2.5/5 x 10^k step giving at most 5 intervals over `span`, so tick labels read cleanly."""
    raw = span / 5
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def _domain(values: np.ndarray, marks: Sequence[tuple[str, float]], log: bool,
            fixed_hi: float | None) -> tuple[float, list[float], list[tuple[str, float]], list[tuple[str, float]]]:
    """(axis maximum, ticks, thresholds drawn on the axis, thresholds too far right to draw to scale).

    The axis covers the data and every threshold near it, so a threshold is visible on its chart; a bound
    like `number_words_max: 100000` over documents of a few hundred words would squash the data into a
    corner, so it is written at the right edge instead."""
    top = float(np.max(values)) if len(values) else 0.0
    near = [(k, v) for k, v in marks if top <= 0 or v <= top * _FAR]
    far = [(k, v) for k, v in marks if (k, v) not in near]
    hi = fixed_hi if fixed_hi is not None else max([top, *(v for _, v in near), 0.0])
    if log:
        hi = max(hi * 1.05, 1.0)
        ticks, v = [0.0], 1.0
        while v <= hi:
            ticks.append(v)
            v *= 10
        step = max(1, math.ceil((len(ticks) - 1) / 4))
        return hi, [ticks[0], *ticks[1::step]], near, far
    if hi <= 0:
        hi = 1.0
    step = _nice_step(hi)
    hi = math.ceil(hi / step - 1e-9) * step  # values on the last edge fall into the last bin
    return hi, [i * step for i in range(round(hi / step) + 1)], near, far


def _x(value: float, t_hi: float, log: bool) -> float:
    return _PAD_L + float(_t(np.asarray([value], dtype=np.float64), log)[0]) / t_hi * (_SVG_W - _PAD_L - _PAD_R)


def _bins(values: np.ndarray, layers: Sequence[tuple[str, np.ndarray]], t_hi: float, log: bool) -> list[np.ndarray]:
    idx = np.clip((_t(values, log) / t_hi * HIST_BINS).astype(np.int64), 0, HIST_BINS - 1)
    return [np.bincount(idx[mask], minlength=HIST_BINS) for _, mask in layers]


def svg_histogram(title: str, values: np.ndarray, layers: Sequence[tuple[str, np.ndarray]], log: bool,
                  marks: Sequence[tuple[str, float]], fixed_hi: float | None = None) -> str:
    """A stacked histogram (one layer per class of document) with its thresholds drawn as dashed lines.

    `values` are the statistic of every document with a value; each layer is a boolean mask over them.
    Layer counts go into the `<title>` so a reader can hover for exact numbers.
    """
    sizes = ", ".join(f"{cls} {int(mask.sum())}" for cls, mask in layers)
    parts = [(f'<svg class="chart" viewBox="0 0 {_SVG_W} {_SVG_H}" width="{_SVG_W}" height="{_SVG_H}" '
             f'role="img"><title>{esc(title)} ({esc(sizes)})</title>'
             f'<text x="{_PAD_L}" y="12" class="ct">{esc(title)}</text>')]
    ph = _SVG_H - _PAD_T - _PAD_B
    base = _PAD_T + ph
    if not len(values):
        parts.append(f'<text x="{_SVG_W // 2}" y="{_PAD_T + ph // 2}" class="na">no values</text>')
        parts.extend(f'<text class="tl" x="{_SVG_W - _PAD_R}" y="{_PAD_T + 8 + 10 * i}" text-anchor="end">'
                     f"{esc(k)} {esc(fmt_num(v))}</text>" for i, (k, v) in enumerate(marks))
        return "".join(parts) + "</svg>"
    hi, ticks, near, far = _domain(values, marks, log, fixed_hi)
    t_hi = float(_t(np.asarray([hi]), log)[0])
    counts = _bins(values, layers, t_hi, log)
    ymax = max(1, int(np.max(np.sum(counts, axis=0))))
    bw = (_SVG_W - _PAD_L - _PAD_R) / HIST_BINS
    for b in range(HIST_BINS):
        y = float(base)
        for (cls, _), c in zip(layers, counts):
            if c[b]:
                h = c[b] / ymax * ph
                y -= h
                parts.append(f'<rect class="{cls}" x="{_PAD_L + b * bw:.1f}" y="{y:.1f}" width="{bw - 0.6:.1f}" '
                             f'height="{h:.1f}"/>')
    parts.append(f'<line class="ax" x1="{_PAD_L}" y1="{base}" x2="{_SVG_W - _PAD_R}" y2="{base}"/>'
                 f'<text x="{_PAD_L - 3}" y="{_PAD_T + 8}" class="yl">{ymax}</text>'
                 f'<text x="{_PAD_L - 3}" y="{base}" class="yl">0</text>')
    parts.extend(f'<text x="{_x(tick, t_hi, log):.1f}" y="{base + 12}" class="xl">{esc(fmt_num(tick))}</text>'
                 for tick in ticks)
    for i, (kind, value) in enumerate(near):
        x = _x(value, t_hi, log)
        anchor, dx = ("end", -3) if x > _PAD_L + (_SVG_W - _PAD_L) * 0.6 else ("start", 3)
        parts.append(f'<line class="thr" x1="{x:.1f}" y1="{_PAD_T - 2}" x2="{x:.1f}" y2="{base}"/>'
                     f'<text class="tl" x="{x + dx:.1f}" y="{_PAD_T + 8 + 10 * i}" text-anchor="{anchor}">'
                     f"{esc(kind)} {esc(fmt_num(value))}</text>")
    for i, (kind, value) in enumerate(far, start=len(near)):
        parts.append(f'<text class="tl thr-far" x="{_SVG_W - _PAD_R}" y="{_PAD_T + 8 + 10 * i}" '
                     f'text-anchor="end">{esc(kind)} {esc(fmt_num(value))} →</text>')
    return "".join(parts) + "</svg>"


@dataclass(frozen=True)
class Bar:
    """One row of a horizontal bar chart: segments (start, end, css class) and a note on the right."""

    label: str
    segments: tuple[tuple[float, float, str], ...]
    note: str = ""


def svg_bars(title: str, bars: Sequence[Bar], label_w: int = 190, width: int = 720) -> str:
    """Horizontal bars: stacked shares per source, a waterfall (offset segments) or counts per tag."""
    row_h, top = 18, 22
    height = top + row_h * max(1, len(bars)) + 6
    scale_max = max([end for b in bars for _, end, _ in b.segments] + [1.0])
    plot_w = width - label_w - 150
    parts = [(f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">'
             f'<title>{esc(title)}</title><text x="4" y="14" class="ct">{esc(title)}</text>')]
    for i, bar in enumerate(bars):
        y = top + i * row_h
        parts.append(f'<text x="{label_w - 6}" y="{y + 12}" class="bl">{esc(bar.label)}</text>')
        for start, end, cls in bar.segments:
            if end <= start:
                continue
            x0 = label_w + start / scale_max * plot_w
            w = max(0.8, (end - start) / scale_max * plot_w)
            parts.append(f'<rect class="{cls}" x="{x0:.1f}" y="{y + 2}" width="{w:.1f}" height="{row_h - 5}"/>')
        parts.append(f'<text x="{label_w + plot_w + 6}" y="{y + 12}" class="bn">{esc(bar.note)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# ============================================================================================ sections
def _doc_block(docs: Docs, i: int, texts: Mapping[str, str], metric: Metric | None,
               params: quality.LangParams | None, manifest: Mapping[str, Any]) -> str:
    """One document: id, status, language, the statistic that matters with its threshold, and its text."""
    doc_id = str(docs.ids[i])
    meta = [f"<b>{esc(doc_id)}</b>", esc(docs.status[i]), f"lang {esc(docs.strings['lang'][i])}"]
    if metric is not None:
        value = docs.numbers[metric.column][i]
        bounds = ", ".join(f"{k} {fmt_num(v)}" for k, v in metric.marks(params, manifest))
        meta.append(f"{esc(metric.column)}={esc(fmt_num(value))}" + (f" ({esc(bounds)})" if bounds else ""))
    detail = docs.detail[i]
    text = texts.get(doc_id, "")
    clipped = text[:SAMPLE_CHARS] + ("…" if len(text) > SAMPLE_CHARS else "")
    return (f'<div class="doc"><div class="meta">{" · ".join(meta)}</div>'
            + (f'<div class="detail">{esc(detail)}</div>' if detail else "")
            + f"<pre>{esc(clipped)}</pre></div>")


def overview_lang_rows(run: RunData) -> list[tuple[int, str, str, int, float, int]]:
    """(kept, language, source, rejected, bytes in, bytes out) per language of one run, exact even when
    the run's documents are sampled (from `Docs.totals`, counted over all of them)."""
    docs, rows = run.docs, []
    if docs.sampled and docs.totals is not None:
        langs = sorted({lang for lang, _status, _reason in docs.totals.by_lang})
        for lang in langs:
            kept, rejected, _ = docs.totals.lang_counts(lang)
            rows.append((kept, lang, run.name, rejected, docs.totals.bytes_by_lang[lang], run.kept_bytes.get(lang, 0)))
        return rows
    for lang, idx in docs.by_lang.items():
        kept_mask = docs.status[idx] == "kept"
        bytes_in = float(np.nansum(docs.numbers["n_bytes"][idx]))
        rows.append((int(kept_mask.sum()), lang, run.name, int((~kept_mask).sum()), bytes_in,
                     run.kept_bytes.get(lang, 0)))
    return rows


def section_overview(runs: Sequence[RunData],
                     lang_rows: Sequence[tuple[int, str, str, int, float, int]] | None = None) -> str:
    """Documents and bytes in and out per source, then per language and source (`lang_rows`: what
    `overview_lang_rows` gave for each run, collected while the runs were rendered one at a time)."""
    rows, bars = [], []
    for run in runs:
        d, b = run.stats.get("documents", {}), run.stats.get("bytes", {})
        rows.append((run.name, fmt_int(d.get("input")), fmt_int(d.get("kept")), fmt_int(d.get("rejected")),
                     fmt_int(d.get("quarantined")), pct(d.get("kept", 0), d.get("input", 0)),
                     fmt_bytes(b.get("in")), fmt_bytes(b.get("out")), pct(b.get("out") or 0, b.get("in") or 0)))
        kept, rej, quar = d.get("kept", 0), d.get("rejected", 0), d.get("quarantined", 0)
        bars.append(Bar(run.name, ((0, kept, "kept"), (kept, kept + rej, "rej"),
                                   (kept + rej, kept + rej + quar, "quar")),
                        f"{fmt_int(kept)} / {fmt_int(d.get('input'))} kept"))
    per_source = table(("source", "documents in", "kept", "rejected", "quarantined", "kept %", "bytes in",
                        "bytes out", "bytes kept %"), rows, numeric=range(1, 9))
    chart = svg_bars("Documents per source: kept, rejected, quarantined", bars)
    if lang_rows is None:
        lang_rows = [row for run in runs for row in overview_lang_rows(run)]
    lang_rows = sorted(lang_rows, key=lambda r: (-r[0], r[1], r[2]))
    per_lang = table(("language", "source", "documents in", "kept", "rejected", "bytes in", "bytes out"),
                     [(lang, src, fmt_int(k + r), fmt_int(k), fmt_int(r), fmt_bytes(bi), fmt_bytes(bo))
                      for k, lang, src, r, bi, bo in lang_rows], numeric=range(2, 7))
    note = ('<p class="muted">Bytes in per language are the UTF-8 size of the documents as read (quarantined '
            "records have no language); bytes out are the kept text after cleaning and PII scrubbing.</p>")
    return section("overview", "Documents and bytes in and out", per_source + chart
                   + f"<h4>Per language and source</h4>{note}<details><summary>{len(lang_rows)} rows"
                   f"</summary>{per_lang}</details>", level=2)


def _waterfall_steps(run: RunData) -> list[tuple[str, str, int]]:
    """(label, stage, removed) per rejection reason in pipeline order, largest first within a stage."""
    reasons = run.stats.get("reasons") or {}
    ordered = sorted(reasons.items(), key=lambda kv: (STAGE_ORDER.index(stage_of(kv[0])), -kv[1], kv[0]))
    return [(reason, stage_of(reason), int(n)) for reason, n in ordered]


def section_waterfall(run: RunData, anchor: str) -> str:
    """Input, minus quarantine, minus each filter's removals in pipeline order, down to what was kept."""
    d = run.stats.get("documents", {})
    n_in, live = int(d.get("input", 0)), int(d.get("input", 0))
    bars = [Bar("input", ((0, n_in, "kept"),), fmt_int(n_in))]
    quar = int(d.get("quarantined", 0))
    bars.append(Bar("quarantine (unreadable)", ((live - quar, live, "quar"),), f"−{fmt_int(quar)}"))
    live -= quar
    rows = []
    for reason, stage, n in _waterfall_steps(run):
        bars.append(Bar(f"{stage}: {reason}", ((live - n, live, "rej"),), f"−{fmt_int(n)} ({pct(n, n_in)})"))
        rows.append((stage, reason, fmt_int(live), fmt_int(n), fmt_int(live - n), pct(n, n_in)))
        live -= n
    bars.append(Bar("kept", ((0, live, "kept"),), fmt_int(live)))
    stage_rows = [(s.get("stage"), fmt_int(s.get("in")), fmt_int(s.get("removed")), fmt_int(s.get("out")))
                  for s in run.stats.get("stages") or []]
    body = (svg_bars(f"{run.name}: removals per filter", bars)
            + table(("stage", "reason", "in", "removed", "out", "% of input"), rows, numeric=(2, 3, 4, 5))
            + "<h4>Per stage</h4>" + table(("stage", "in", "removed", "out"), stage_rows, numeric=(1, 2, 3)))
    return section(anchor, "Removals per filter (waterfall)", body)


def _lang_summary(docs: Docs, lang: str, idx: np.ndarray) -> str:
    if docs.sampled and docs.totals is not None:  # exact counts, not the sample's
        kept, rejected, reasons = docs.totals.lang_counts(lang)
        top = ", ".join(f"{r} {n:,}" for r, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:4])
        return (f"{lang}: {kept + rejected:,} documents, {kept:,} kept, {rejected:,} rejected"
                + (f" ({top})" if top else "") + f"; charts from {len(idx):,} sampled")
    kept = int((docs.status[idx] == "kept").sum())
    reasons = Counter(str(r) for r in docs.reason[idx] if r)
    top = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:4])
    return f"{lang}: {len(idx)} documents, {kept} kept, {len(idx) - kept} rejected" + (f" ({top})" if top else "")


def _params_line(run: RunData, params: quality.LangParams | None) -> str:
    if params is None:
        return '<p class="warn">thresholds could not be loaded for this language (invalid overrides)</p>'
    ppl_value, ppl_kind = ppl_limit(run.manifest, params)
    ppl = ((run.stats.get("languages") or {}).get(params.lang) or {}).get("perplexity") or {}
    ppl_text = (f"perplexity {ppl_kind} {fmt_num(ppl_value)}" if ppl.get("scored") or not ppl
                else "perplexity: no model, not filtered" if ppl.get("no_model") else "perplexity: not applied")
    items = [f"lid_min {fmt_num(params.lid_min)}",
             f"number_words {params.number_words_min}..{params.number_words_max}",
             f"char_repetition_max {fmt_num(params.char_repetition_max)} (n={params.char_repetition_n})",
             f"word_repetition_max {fmt_num(params.word_repetition_max)} (n={params.word_repetition_n})",
             f"special_characters_max {fmt_num(params.special_characters_max)}",
             f"stopwords_min {fmt_num(params.stopwords_min)}" if quality.has_stopwords(params.lang)
             else "stopwords: no list, not filtered",
             f"flagged_words_max {fmt_num(params.flagged_words_max)}",
             ppl_text]
    return f'<p class="params">Thresholds: {esc("; ".join(items))}</p>'


def lang_charts(run: RunData, lang: str, idx: np.ndarray) -> str:
    """One histogram per statistic for one language, layered kept / removed by this filter / removed for
    another reason, with this language's thresholds on each."""
    docs = run.docs
    charts = []
    for metric in METRICS:
        values = docs.numbers[metric.column][idx]
        ok = ~np.isnan(values)
        status, reason = docs.status[idx][ok], docs.reason[idx][ok]
        here = reason == metric.reason
        layers = [("kept", status == "kept"), ("rej", here), ("oth", (status != "kept") & ~here)]
        marks = run.marks(metric, lang)
        title = f"{metric.column} · {lang} · n={int(ok.sum())}"
        fixed = 1.0 if metric.column == "lang_score" else None
        charts.append(svg_histogram(title, values[ok], layers, metric.log, marks, fixed_hi=fixed))
    return "".join(charts)


def _chart_langs(docs: Docs) -> dict[str, np.ndarray]:
    """Rows per language for the charts: `docs.by_lang`, except that a sampled run lists every language
    of the run, largest first by its exact count, with no rows for a language the sample missed."""
    if not docs.sampled or docs.totals is None:
        return docs.by_lang
    sizes = Counter[str]()
    for (lang, _status, _reason), n in docs.totals.by_lang.items():
        sizes[lang] += n
    empty = np.zeros(0, dtype=np.int64)
    return {lang: docs.by_lang.get(lang, empty) for lang in sorted(sizes, key=lambda lg: (-sizes[lg], lg))}


def section_distributions(run: RunData, anchor: str) -> str:
    """Every statistic per language, from the stored values, against the thresholds that were applied."""
    parts = [('<p class="muted">Bars: <span class="sw kept"></span> kept, <span class="sw rej"></span> removed '
             'by this filter, <span class="sw oth"></span> removed for another reason. Dashed lines: the '
             "thresholds applied to the language (table row plus the run's recipe overrides). Word counts and "
             "perplexity use a log scale. Documents removed before scoring have no statistics.</p>"),
             run.docs.sample_note()]
    for i, (lang, idx) in enumerate(_chart_langs(run.docs).items()):
        opened = " open" if i == 0 else ""
        parts.append(f"<details{opened}><summary>{esc(_lang_summary(run.docs, lang, idx))}</summary>"
                     f"{_params_line(run, run.params(lang))}<div class=\"grid\">{lang_charts(run, lang, idx)}"
                     "</div></details>")
    if not run.docs.by_lang:
        parts.append('<p class="muted">No documents.</p>')
    return section(anchor, "Statistics per language", "".join(parts))


def section_langid(run: RunData, anchor: str) -> str:
    """Declared (assigned) language against the language-ID prediction, plus which backend decided."""
    docs, cfg = run.docs, run.config
    declared = ", ".join(cfg.get("declared") or []) or "multi (language ID assigns the language)"
    pairs: Counter[tuple[str, str]] = Counter()
    kept_pairs: Counter[tuple[str, str]] = Counter()
    per_lang: dict[str, Counter[str]] = {}
    if docs.sampled and docs.totals is not None:  # the same tables, counted over every document
        for (lang, pred, kept), n in sorted(docs.totals.predicted.items(), key=lambda kv: repr(kv[0])):
            key = "none" if pred is None else ("same" if pred == lang else "other")
            per_lang.setdefault(lang, Counter())[key] += n
            if pred is not None and pred != lang:
                pairs[(lang, str(pred))] += n
                kept_pairs[(lang, str(pred))] += n if kept else 0
    else:
        for i in range(len(docs)):
            lang, pred = str(docs.strings["lang"][i] or "und"), docs.strings["lang_predicted"][i]
            key = "none" if pred is None else ("same" if pred == lang else "other")
            per_lang.setdefault(lang, Counter())[key] += 1
            if pred is not None and pred != lang:
                pairs[(lang, str(pred))] += 1
                kept_pairs[(lang, str(pred))] += docs.status[i] == "kept"
    agree_rows = [(lang, fmt_int(sum(c.values())), fmt_int(c["same"]), fmt_int(c["other"]), fmt_int(c["none"]),
                   pct(c["same"], c["same"] + c["other"]))
                  for lang, c in sorted(per_lang.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))]
    mismatch_rows = [(lang, pred, fmt_int(n), fmt_int(kept_pairs[(lang, pred)]), fmt_int(n - kept_pairs[(lang, pred)]))
                     for (lang, pred), n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:30]]
    backends = (docs.totals.backends if docs.sampled and docs.totals is not None
                else Counter(str(b or "none") for b in docs.strings["lang_backend"]))
    notes = (run.stats.get("notes") or {}).get("langid_not_filtered") or []
    body = (f"<p>Declared: {esc(declared)}. Model: {esc(cfg.get('langid_model'))}"
            + (" (skipped in this run)" if run.skipped("langid") else "") + ".</p>"
            + "<h4>Backend that assigned the language</h4>"
            + table(("backend", "documents"), [(k, fmt_int(v)) for k, v in sorted(backends.items())], numeric=(1,))
            + "<h4>Most frequent disagreements (assigned language, predicted language)</h4>"
            + table(("assigned", "predicted", "documents", "kept", "rejected"), mismatch_rows, numeric=(2, 3, 4))
            + f"<details><summary>Agreement per assigned language ({len(agree_rows)})</summary>"
            + table(("assigned", "documents", "predicted the same", "predicted another", "no prediction",
                     "agreement"), agree_rows, numeric=(1, 2, 3, 4, 5)) + "</details>"
            + "".join(f'<p class="warn">{esc(n)}</p>' for n in notes))
    return section(anchor, "Language identification", body)


def _nearest_kept(values: np.ndarray, kept_idx: np.ndarray, value: float, used: set[int], log: bool) -> int | None:
    """The kept document whose statistic is closest to `value` (lowest id on ties), not shown before."""
    candidates = [int(i) for i in kept_idx if int(i) not in used and not math.isnan(values[i])]
    if not candidates or math.isnan(value):
        return None
    arr = np.asarray(candidates, dtype=np.int64)
    dist = np.abs(_t(values[arr], log) - _t(np.asarray([value]), log)[0])
    return int(arr[int(np.argmin(dist))])  # argmin returns the first, and rows are in id order


def _pick_rejected(run: RunData, reason: str, metric: Metric | None, rows: np.ndarray) -> list[int]:
    """The removed documents closest to their language's threshold (the borderline cases), by id on ties;
    without a statistic, the first by id."""
    if metric is None:
        return [int(i) for i in rows[:SAMPLES_PER_REASON]]
    docs = run.docs
    scored = []
    for i in rows:
        value = docs.numbers[metric.column][i]
        marks = run.marks(metric, str(docs.strings["lang"][i] or "und"))
        if math.isnan(value) or not marks:
            dist = math.inf
        else:
            tv = float(_t(np.asarray([value]), metric.log)[0])
            dist = min(abs(tv - float(_t(np.asarray([m]), metric.log)[0])) for _, m in marks)
        scored.append((dist, int(i)))
    scored.sort()
    return [i for _, i in scored[:SAMPLES_PER_REASON]]


def section_samples(run: RunData, anchor: str) -> str:
    """For each rejection reason, the borderline removed documents beside the nearest kept document of the
    same language by the statistic behind the reason: what the threshold separates, in the text itself."""
    docs = run.docs
    chosen: list[tuple[str, Metric | None, list[tuple[int, int | None]]]] = []
    for reason, _stage, _n in _waterfall_steps(run):
        if reason.startswith("duplicate"):
            continue
        metric = metric_for_reason(reason)
        rows = np.nonzero(docs.reason == reason)[0]
        picks = []
        used: set[int] = set()
        for i in _pick_rejected(run, reason, metric, rows):
            lang = str(docs.strings["lang"][i] or "und")
            kept_idx = docs.by_lang.get(lang, np.zeros(0, np.int64))
            kept_idx = kept_idx[docs.status[kept_idx] == "kept"]
            near = None
            if metric is not None:
                near = _nearest_kept(docs.numbers[metric.column], kept_idx, docs.numbers[metric.column][i],
                                     used, metric.log)
            if near is not None:
                used.add(near)
            picks.append((i, near))
        chosen.append((reason, metric, picks))
    texts = fetch_texts(run.dir, {str(docs.ids[j]) for _, _, picks in chosen for p in picks for j in p
                                  if j is not None})
    parts = []
    for reason, metric, picks in chosen:
        rows_html = []
        for i, near in picks:
            lang = str(docs.strings["lang"][i] or "und")
            params = run.params(lang)
            left = _doc_block(docs, i, texts, metric, params, run.manifest)
            right = (_doc_block(docs, near, texts, metric, params, run.manifest) if near is not None
                     else '<p class="muted">no kept document in this language has this statistic</p>')
            rows_html.append(f'<div class="pair"><div>{left}</div><div>{right}</div></div>')
        what = f"by {metric.column}" if metric is not None else ""
        removed = (docs.totals.reason_count(lambda r, want=reason: r == want)
                   if docs.sampled and docs.totals is not None else int((docs.reason == reason).sum()))
        if docs.sampled and not picks:
            rows_html.append('<p class="muted">none of these documents is in the sample</p>')
        parts.append(f'<h4 id="{esc(anchor)}-{slug(reason)}">{esc(reason)} <span class="muted">'
                     f"({fmt_int(removed)} removed; nearest kept {esc(what)})</span></h4>"
                     f'<div class="pair head"><div>removed</div><div>nearest kept</div></div>{"".join(rows_html)}')
    if not parts:
        parts.append('<p class="muted">No document was rejected.</p>')
    return section(anchor, "Removed documents next to kept ones near the threshold",
                   docs.sample_note() + "".join(parts))


def _cluster_of(docs: Docs, i: int) -> str:
    cluster = docs.strings["cluster"][i]
    if cluster:
        return str(cluster)
    match = re.match(r"duplicate of (\S+)", str(docs.detail[i] or ""))
    return match.group(1) if match else str(docs.ids[i])


def _dup_kind(docs: Docs, i: int) -> str:
    """exact / near / url from the detail `duplicate of X (near ...)`, else the reason itself."""
    match = re.search(r"\((exact|near|url|template)\b", str(docs.detail[i] or ""))
    return match.group(1) if match else str(docs.reason[i])


def section_duplicates(run: RunData, anchor: str) -> str:
    """Duplicate clusters, largest first, with the kept copy beside one removed copy.

    On a sampled run the number removed is exact (`Totals`) and the clusters are as far as the sample sees
    them: copies are sampled by their own id, so a cluster shows only its sampled copies and its kept copy
    may be outside the sample (its text is then fetched by id all the same)."""
    docs = run.docs
    rows = [i for i in range(len(docs)) if str(docs.reason[i] or "").startswith("duplicate")]
    sampled = docs.sampled and docs.totals is not None
    removed = docs.totals.reason_count(lambda r: r.startswith("duplicate")) if docs.totals and sampled else len(rows)
    if not removed:
        why = dedup_status(run.manifest, run.stats)
        return section(anchor, "Duplicate clusters", f'<p class="muted">No duplicate clusters: {esc(why)}.</p>')
    clusters: dict[str, list[int]] = {}
    for i in rows:
        clusters.setdefault(_cluster_of(docs, i), []).append(i)
    order = sorted(clusters.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    kept_index = {str(docs.ids[i]): i for i in range(len(docs)) if docs.status[i] == "kept"}
    top = order[:TOP_CLUSTERS]
    texts = fetch_texts(run.dir, [c for c, _ in top] + [str(docs.ids[m[0]]) for _, m in top])
    in_sample = " in the sample" if sampled else ""
    summary = table(("cluster (kept id)", f"removed copies{in_sample}", "kinds"),
                    [(c, fmt_int(len(m)), ", ".join(sorted({_dup_kind(docs, i) for i in m}))) for c, m in order[:50]],
                    numeric=(1,))
    pairs = []
    for cluster, members in top:
        keeper = kept_index.get(cluster)
        if keeper is not None:
            left = _doc_block(docs, keeper, texts, None, None, run.manifest)
        elif sampled and cluster in texts:
            left = (f'<div class="doc"><div class="meta"><b>{esc(cluster)}</b> · kept (not in the sample)</div>'
                    f"<pre>{esc(texts[cluster][:SAMPLE_CHARS])}</pre></div>")
        else:
            left = f'<p class="muted">kept copy {esc(cluster)} not in this run</p>'
        right = _doc_block(docs, members[0], texts, None, None, run.manifest)
        pairs.append(f"<h4>{esc(cluster)}: {len(members)} removed{in_sample}</h4>"
                     f'<div class="pair"><div>{left}</div><div>{right}</div></div>')
    if sampled:
        head = (f"<p>{fmt_int(removed)} documents removed as duplicates.</p>" + docs.sample_note()
                + f"<p>In the sample: {fmt_int(len(rows))} removed copies in {fmt_int(len(clusters))} clusters.</p>")
    else:
        head = f"<p>{fmt_int(len(rows))} documents removed as duplicates in {fmt_int(len(clusters))} clusters.</p>"
    body = (head + f"<details><summary>Largest clusters{in_sample} ({min(len(order), 50)} of {len(order)})"
            + f"</summary>{summary}</details><h4>The {len(top)} largest: kept copy and one removed copy</h4>"
            + "".join(pairs))
    return section(anchor, "Duplicate clusters", body)


def dedup_settings(manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """The dedup settings the run recorded (`manifest.dedup` or `manifest.config.dedup`), if any."""
    value = manifest.get("dedup", (manifest.get("config") or {}).get("dedup"))
    return dict(value) if isinstance(value, Mapping) else None


def dedup_status(manifest: Mapping[str, Any], stats: Mapping[str, Any]) -> str:
    """One sentence on whether dedup ran, for runs with no duplicate rejections (absence must be explained:
    "no duplicates" and "never looked" read the same in the counts)."""
    if "dedup" in ((manifest.get("config") or {}).get("skip") or []):
        return "deduplication was skipped for this source (recipe skip)"
    settings = dedup_settings(manifest)
    if settings is not None:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(settings.items()) if k in ("exact", "near", "threshold",
                                                                                   "url", "template"))
        return f"deduplication ran ({shown}) and removed no document"
    return "no document was removed as a duplicate (the manifest does not record dedup settings)"


def section_pii(run: RunData, anchor: str) -> str:
    """PII replacements per tag, including configured tags that never fired (evidence they were looked for)."""
    counts = dict(run.stats.get("pii_replacements") or {})
    tags = sorted(set(run.config.get("pii_tags") or []) | set(counts))
    docs = run.docs
    docs_with = (docs.totals.pii_kept if docs.sampled and docs.totals is not None
                 else sum(1 for i in range(len(docs)) if docs.status[i] == "kept" and docs.strings["pii"][i]))
    if run.skipped("pii") or not tags:
        return section(anchor, "PII replacements", '<p class="muted">PII scrubbing was not applied.</p>')
    bars = [Bar(tag, ((0, counts.get(tag, 0), "kept"),), fmt_int(counts.get(tag, 0))) for tag in tags]
    body = (f"<p>{fmt_int(sum(counts.values()))} replacements in {fmt_int(docs_with)} kept documents.</p>"
            + svg_bars(f"{run.name}: PII replacements per tag", bars)
            + table(("tag", "replacements"), [(t, fmt_int(counts.get(t, 0))) for t in tags], numeric=(1,)))
    return section(anchor, "PII replacements", body)


def section_quarantine(run: RunData, anchor: str) -> str:
    """Records that could not be read as documents, grouped by error, with the first few raw lines."""
    errors: Counter[str] = Counter()
    q: list[dict[str, Any]] = []  # the first 10 by (file, line, error), as a stable sort of all would give
    for path in sorted((run.dir / "quarantine").glob("*.parquet")):
        # a batch at a time: raw lines can be long, and only the first 10 records are shown
        for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(
                batch_size=_BATCH_ROWS, columns=["file", "line", "raw", "error"], use_threads=False):
            records = batch.to_pylist()
            errors.update(str(r["error"]) for r in records)
            q = heapq.nsmallest(10, [*q, *records], key=lambda r: (str(r["file"]), r["line"] or 0, str(r["error"])))
    if not q:
        return section(anchor, "Quarantine", '<p class="muted">No quarantined records.</p>')
    rows = [(e, fmt_int(n)) for e, n in sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))[:30]]
    samples = [(Path(str(r["file"])).name, fmt_int(r["line"]), r["error"],
                Raw(f"<code>{esc((r['raw'] or b'')[:200].decode('utf-8', 'replace'))}</code>")) for r in q[:10]]
    body = (table(("error", "records"), rows, numeric=(1,)) + "<h4>First records</h4>"
            + table(("file", "line", "error", "raw (first 200 bytes)"), samples, numeric=(1,)))
    return section(anchor, "Quarantine", body)


def section_run_info(run: RunData, anchor: str) -> str:
    """Where the numbers come from: input fingerprint, configuration hash, versions, recorded times."""
    m, cfg = run.manifest, run.config
    versions = m.get("versions") or {}
    lid = versions.get("langid_model") or {}
    rows = [("card", m.get("card")), ("card sha256", m.get("card_sha256")),
            ("input files", fmt_int(len((m.get("input") or {}).get("files") or []))),
            ("input fingerprint", (m.get("input") or {}).get("fingerprint")), ("config hash", m.get("config_hash")),
            ("recipe operations", ", ".join(cfg.get("recipe") or []) or "none"),
            ("skipped stages", ", ".join(cfg.get("skip") or []) or "none"),
            ("language-ID model", f"{cfg.get('langid_model')} (sha256 {lid.get('sha256', '?')})"),
            ("roots / Beam", f"{versions.get('roots')} / {versions.get('apache_beam')}"),
            ("started / finished", f"{m.get('started')} / {m.get('finished')}"),
            ("wall seconds", fmt_num((run.stats.get("timings") or {}).get("wall_seconds")))]
    notes = (run.stats.get("notes") or {}).get("perplexity_not_filtered") or []
    extra = (f"<details><summary>{len(notes)} perplexity notes</summary><ul>"
             + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul></details>") if notes else ""
    return section(anchor, "Run", table(("", ""), rows, cls="kv") + extra)


def source_section(run: RunData) -> str:
    """Everything about one run, each part under its own anchor (`<source>-<part>`)."""
    a = slug(run.name)
    parts = [section_run_info(run, f"{a}-run"), section_waterfall(run, f"{a}-waterfall"),
             section_langid(run, f"{a}-langid"), section_distributions(run, f"{a}-distributions"),
             section_samples(run, f"{a}-samples"), section_duplicates(run, f"{a}-duplicates"),
             section_pii(run, f"{a}-pii"), section_quarantine(run, f"{a}-quarantine")]
    return f'<section id="src-{a}" class="source"><h2>Source: {esc(run.name)}</h2>{"".join(parts)}</section>'


# ============================================================================================ release
def manifest_entries(value: Any, key: str = "name") -> list[dict[str, Any]]:
    """A manifest list of records given as a list of dicts, or as a mapping name -> dict/str."""
    if isinstance(value, Mapping):
        return [{key: k, **(v if isinstance(v, Mapping) else {"reason": v})} for k, v in sorted(value.items())]
    return [dict(v) for v in value or [] if isinstance(v, Mapping)]


def clearance_text(entry: Mapping[str, Any]) -> str:
    """The clearance basis of an included source, whichever way the manifest spelled it."""
    basis = entry.get("clearance", entry.get("basis"))
    if isinstance(basis, Mapping):
        return "; ".join(f"{k}: {v.get('basis', v) if isinstance(v, Mapping) else v}" for k, v in sorted(basis.items()))
    return str(basis) if basis else "not recorded"


def section_release(manifest: Mapping[str, Any]) -> str:
    """The release manifest: sources included (with clearance basis), excluded (and why), languages and
    token counts. Separate from the run sections so it works on a release directory with or without the
    runs that fed it."""
    included = manifest_entries(manifest.get("sources", manifest.get("included")))
    excluded = manifest_entries(manifest.get("excluded"))
    inc_rows = [(e.get("name"), e.get("license", "?"), clearance_text(e), fmt_int(e.get("documents")),
                 fmt_int(e.get("tokens"))) for e in included]
    exc_rows = [(e.get("name"), e.get("reason", "not recorded")) for e in excluded]
    langs = manifest.get("languages") or {}
    lang_items = sorted(((str(k), v if isinstance(v, Mapping) else {"tokens": v}) for k, v in langs.items()),
                        key=lambda kv: (-(kv[1].get("tokens") or kv[1].get("documents") or 0), kv[0]))
    lang_rows = [(k, fmt_int(v.get("documents")), fmt_int(v.get("tokens")), fmt_bytes(v.get("bytes")))
                 for k, v in lang_items]
    bars = [Bar(k, ((0, float(v.get("tokens") or 0), "kept"),), fmt_int(v.get("tokens"))) for k, v in lang_items
            if v.get("tokens")]
    takedowns = manifest.get("takedowns")
    n_takedowns = len(takedowns) if isinstance(takedowns, (list, dict)) else takedowns
    body = (f"<p>Release {esc(manifest.get('name', ''))} created {esc(manifest.get('created', 'unknown'))}; "
            f"takedowns applied: {esc(fmt_int(n_takedowns) if n_takedowns is not None else 'none recorded')}.</p>"
            "<h4>Sources included</h4>"
            + table(("source", "licence", "clearance basis", "documents", "tokens"), inc_rows, numeric=(3, 4))
            + "<h4>Sources excluded</h4>" + table(("source", "why"), exc_rows)
            + "<h4>Languages</h4>" + table(("language", "documents", "tokens", "bytes"), lang_rows, numeric=(1, 2, 3))
            + (svg_bars("Tokens per language", bars) if bars else "")
            + section_fertility(manifest))
    return section("release", "Release", body, level=2)


FERTILITY_FLAG = 1.5  # tokens/word this many times the median of its word unit, or more, is drawn red


def _fertility_flags(items: Sequence[tuple[str, Mapping[str, Any]]]) -> tuple[set[str], dict[str, float]]:
    """(languages to flag, median tokens/word per word unit). Each word unit is judged on its own: tokens
    per character-word are lower by construction, so against one shared median a poorly served zh or th
    would never stand out, and every whitespace language would look worse than it is."""
    by_unit: dict[str, list[tuple[str, float]]] = {}
    for lang, v in items:
        if v.get("tokens_per_word"):
            by_unit.setdefault(str(v.get("word_unit", "?")), []).append((lang, float(v["tokens_per_word"])))
    flagged: set[str] = set()
    medians: dict[str, float] = {}
    for unit, values in by_unit.items():
        medians[unit] = float(np.median([r for _, r in values]))
        worst = max(r for _, r in values)
        flagged |= {lang for lang, r in values if r >= worst or r >= FERTILITY_FLAG * medians[unit]}
    return flagged, medians


def section_fertility(manifest: Mapping[str, Any]) -> str:
    """Tokens per word and per character of each language on the held-out split (`manifest["fertility"]`,
    written by `roots.fertility` at merge), worst first within each word unit, so a steward sees which
    languages the vocabulary serves poorly: a language cut into more pieces per word costs more compute per
    word and gets a shorter effective context. Red: the worst language of each word unit and any at
    `FERTILITY_FLAG` times its unit's median or more. Languages with no held-out document are listed as not
    measured rather than silently left out."""
    data = manifest.get("fertility")
    intro = ("<p>Tokens per word and per character on the held-out (validation) text, which the tokenizer "
             "was not trained on; BLOOM's paper compared tokenizers this way (fertility). Tokens exclude the "
             "end-of-document token. Words are whitespace-separated, except for languages written without "
             "spaces (zh, ja, th, …), where each character of that script is a word; the two units are not "
             "directly comparable, so each is ranked and judged on its own.</p>")
    if not isinstance(data, Mapping):
        return section("release-fertility", "Tokenizer fertility",
                       '<p class="muted">Not recorded in this manifest (built before fertility was measured); '
                       "rebuild the release to measure it.</p>", level=4)
    items = [(str(k), v) for k, v in data.items() if isinstance(v, Mapping)]
    unit_order = {"whitespace": 0, "character": 1}
    items.sort(key=lambda kv: (unit_order.get(str(kv[1].get("word_unit")), 2), str(kv[1].get("word_unit")),
                               -(kv[1].get("tokens_per_word") or 0.0), kv[0]))
    flagged, medians = _fertility_flags(items)
    rows = [(Raw(f'<span class="warn">{esc(k)}</span>') if k in flagged else k,
             v.get("word_unit", "?"), fmt_int(v.get("documents")), fmt_int(v.get("words")), fmt_int(v.get("chars")),
             fmt_int(v.get("tokens")), _ratio_text(v.get("tokens_per_word")), _ratio_text(v.get("tokens_per_char"), 3))
            for k, v in items]
    bars = [Bar(k, ((0, float(v["tokens_per_word"]), "rej" if k in flagged else "kept"),),
                f"{float(v['tokens_per_word']):.2f}" + (" (character words)" if v.get("word_unit") == "character"
                                                       else ""))
            for k, v in items if v.get("tokens_per_word")]
    langs = manifest.get("languages")
    # manifest languages are shard groups (all code is `code`); fertility is keyed by document language
    measured = {group_of(str(k)) for k in data}
    missing = sorted(str(k) for k in langs if str(k) not in measured) if isinstance(langs, Mapping) else []
    body = intro
    if medians:
        stated = "; ".join(f"{esc(unit)} words {esc(_ratio_text(m))}" for unit, m in
                           sorted(medians.items(), key=lambda um: (unit_order.get(um[0], 2), um[0])))
        body += (f"<p>{len(items)} language(s) measured. Median tokens per word: {stated}. "
                 f'<span class="sw rej"></span> red: the worst language of each word unit and any at '
                 f"{FERTILITY_FLAG:g}× its unit's median or more.</p>")
    body += table(("language", "word unit", "held-out documents", "words", "characters", "tokens",
                   "tokens / word", "tokens / character"), rows, numeric=(2, 3, 4, 5, 6, 7))
    if bars:
        body += svg_bars("Tokens per word on held-out text (worst first, by word unit)", bars)
    if missing:
        body += (f'<p class="muted">Not measured (no held-out document): {esc(", ".join(missing))}.</p>')
    return section("release-fertility", "Tokenizer fertility", body, level=4)


def _ratio_text(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{float(value):.{digits}f}"


# ============================================================================================ page
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 48px;color:#222}
h1{margin-top:24px}h2{border-bottom:2px solid #ddd;padding-top:12px}h3{margin-top:28px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #ddd;padding:2px 8px;
vertical-align:top;text-align:left}th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
table.kv td:first-child{font-weight:600;white-space:nowrap}code{font-size:12px;word-break:break-all}
.muted{color:#777}.warn{color:#a15c00}.params{font-size:12px;color:#444}
nav ul{columns:3;font-size:13px}details{margin:6px 0}summary{cursor:pointer}
.grid{display:flex;flex-wrap:wrap;gap:6px}.chart{background:#fafafa;border:1px solid #eee}
.chart text{font-size:9px;fill:#333}.chart .ct{font-size:10px;font-weight:600}.chart .na{text-anchor:middle;fill:#999}
.chart .yl{text-anchor:end}.chart .xl{text-anchor:middle}.chart .bl{text-anchor:end;font-size:10px}
.chart .bn{font-size:10px}.chart .tl{fill:#000;font-weight:600}
.kept{fill:#4c78a8;background:#4c78a8}.rej{fill:#e45756;background:#e45756}.oth{fill:#bab0ac;background:#bab0ac}
.quar{fill:#f58518;background:#f58518}.ax{stroke:#999}.thr{stroke:#000;stroke-width:1.2;stroke-dasharray:4 2}
.sw{display:inline-block;width:10px;height:10px}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:10px;margin:4px 0}.pair.head{font-weight:600}
.doc{border:1px solid #ddd;padding:4px 6px;background:#fcfcfc}.doc .meta{font-size:12px}
.doc .detail{font-size:12px;color:#a15c00}.doc pre{white-space:pre-wrap;word-break:break-word;margin:4px 0 0;
font-size:12px;max-height:220px;overflow:auto}
"""
# No script, no remote anything: even text that escaped escaping could not run or phone home.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def render(runs: Sequence[RunData], release: Mapping[str, Any] | None = None, title: str = "roots report") -> str:
    """The whole page as a string (pure: the same runs and manifest give the same bytes)."""
    toc = ['<li><a href="#release">Release</a></li>'] if release is not None else []
    toc.append('<li><a href="#overview">Documents and bytes in and out</a></li>')
    for run in runs:
        a = slug(run.name)
        toc.append(f'<li><a href="#src-{a}">{esc(run.name)}</a>: <a href="#{a}-waterfall">waterfall</a>, '
                   f'<a href="#{a}-distributions">statistics</a>, <a href="#{a}-samples">samples</a>, '
                   f'<a href="#{a}-duplicates">duplicates</a>, <a href="#{a}-pii">PII</a></li>')
    body = [f"<h1>{esc(title)}</h1>",
            (f"<p class=\"muted\">{len(runs)} source run(s): {esc(', '.join(r.name for r in runs) or 'none')}. "
            "Times are those recorded in the run manifests.</p>"),
            f"<nav><ul>{''.join(toc)}</ul></nav>"]
    if release is not None:
        body.append(section_release(release))
    # One run's documents at a time: each run's sections and overview rows are rendered, then its `docs`
    # are dropped before the next run's are read.
    sources, lang_rows = [], []
    for run in runs:
        lang_rows.extend(overview_lang_rows(run))
        sources.append(source_section(run))
        run.release_docs()
    if runs:
        body.append(section_overview(runs, lang_rows))
    body.extend(sources)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def find_inputs(path: Path) -> tuple[dict[str, Any] | None, list[Path]]:
    """(release manifest or None, run directories) for a run dir, a runs root, or a release dir.

    A release directory is recognised by a `manifest.json` without `stats.json`; its runs are run
    directories below it or named by `run_dir` in its source entries (relative to the release).
    """
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: no such directory; give a run directory (runs/NAME), a runs root or a release.")
    if is_run_dir(path):
        return None, [path]
    release = _read_json(path / "manifest.json") if (path / "manifest.json").is_file() else None
    runs = {d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".") and is_run_dir(d)}
    runs |= {d for sub in ("runs",) if (path / sub).is_dir() for d in (path / sub).iterdir()
             if not d.name.startswith(".") and is_run_dir(d)}
    if release is not None:
        for entry in manifest_entries(release.get("sources", release.get("included"))):
            if entry.get("run_dir") and is_run_dir(path / str(entry["run_dir"])):
                runs.add(path / str(entry["run_dir"]))
    if release is None and not runs:
        raise UserError(f"{path}: no finished runs here (a run directory holds stats.json and manifest.json); "
                        "run a source with `roots run NAME` first.")
    return release, sorted(runs, key=lambda d: (d.name, str(d)))


def build_report(path: Path, out: Path | None = None, max_docs: int | None = None) -> Path:
    """Write `report.html` for a run directory, a runs root or a release directory; return its path.

    The default location is inside `path`, next to what it describes. The file is replaced atomically.
    `max_docs` caps the documents per run the per-document views are drawn from (None: REPORT_MAX_DOCS).
    """
    path = Path(path)
    release, run_dirs = find_inputs(path)
    runs = [RunData.load(d, max_docs) for d in run_dirs]
    names = [r.name for r in runs]
    title = "roots report: " + (str(release.get("name", path.name)) if release is not None
                                else names[0] if len(names) == 1 else f"{len(names)} sources")
    target = Path(out) if out is not None else path / REPORT_NAME
    if target.is_dir():
        target = target / REPORT_NAME
    atomic_write_text(target, render(runs, release, title))
    return target


# ============================================================================================ inspect
_INVISIBLE = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs"}


def terminal_safe(text: str) -> str:
    """Text for a terminal: control and format characters (ANSI escapes, bidi overrides, zero-width
    characters) shown as `\\x..`/`\\u....` escapes, so a document cannot move the cursor or reorder what
    the operator reads. Newlines become a visible `⏎`."""
    out = []
    for ch in text:
        if ch == "\n":
            out.append("⏎ ")
        elif unicodedata.category(ch) in _INVISIBLE:
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def _stat_line(docs: Docs, i: int, params: quality.LangParams | None, manifest: Mapping[str, Any]) -> str:
    items = []
    for metric in METRICS:
        value = docs.numbers[metric.column][i]
        if math.isnan(value):
            continue
        bounds = metric.marks(params, manifest)
        flag = any((k.startswith("min") and value < v) or (not k.startswith("min") and value > v) for k, v in bounds)
        shown = f"{metric.column}={fmt_num(value)}"
        if bounds:
            shown += " (" + ", ".join(f"{k} {fmt_num(v)}" for k, v in bounds) + ")" + (" !" if flag else "")
        items.append(shown)
    return "; ".join(items) or "not scored (removed before the quality stage)"


def _match(batch: pa.Table, reason: str | None, lang: str | None) -> pa.ChunkedArray | pa.Array:
    """Rows of `batch` with `reason` (or kept, for `kept`) and `lang`; a filter left out matches all."""
    mask: Any = pa.array(np.ones(batch.num_rows, dtype=bool))
    if reason == "kept":
        mask = pc.and_(mask, pc.equal(batch.column("status"), "kept"))
    elif reason:
        mask = pc.and_(mask, pc.fill_null(pc.equal(batch.column("reason"), reason), False))
    if lang:
        mask = pc.and_(mask, pc.fill_null(pc.equal(batch.column("lang"), lang), False))
    return mask


def inspect_rows(run_dir: Path, reason: str | None = None, lang: str | None = None, n: int = 5) -> str:
    """Terminal view of the first `n` documents by id matching `reason` (a rejection reason, or `kept`) and
    `lang`, with status, detail, statistics against their thresholds and the start of the text.

    Deterministic (first by id) so two people looking at the same run see the same documents. A reason or
    language that never occurs in the run is a UserError listing the ones that do (it is usually a typo).
    """
    run = RunData.load(Path(run_dir))
    reasons_seen: set[str] = set()
    langs_seen: set[str] = set()
    matched, first = 0, _Smallest(max(0, n), ["id", "status"])  # the first n by id
    for batch in _doc_batches(run.dir):  # streamed: memory follows `n`, not the run
        reasons_seen.update(str(r) for r in pc.unique(batch.column("reason")).to_pylist() if r)
        langs_seen.update(str(x) for x in pc.unique(batch.column("lang")).to_pylist() if x)
        hit = _match(batch, reason, lang)
        matched += int(pc.sum(pc.cast(hit, pa.int64())).as_py() or 0)
        first.add(batch.filter(hit))
    reasons, langs = sorted(reasons_seen), sorted(langs_seen)
    if reason and reason != "kept" and reason not in reasons:
        raise UserError(f"no document in {run.name} was rejected with reason {reason!r}; reasons in this run: "
                        f"{', '.join(reasons) or 'none'} (or `kept`).")
    if lang and lang not in langs:
        raise UserError(f"no document in {run.name} has language {lang!r}; languages: {', '.join(langs)}.")
    docs = _to_docs(first.table())
    picked = list(range(len(docs)))
    texts = fetch_texts(run.dir, [str(docs.ids[i]) for i in picked])
    what = ", ".join(f"{k}={v}" for k, v in (("reason", reason), ("lang", lang)) if v) or "all documents"
    lines = [f"{run.name}: {matched} document(s) match {what}; showing the first {len(picked)} by id", ""]
    for i in picked:
        lines.extend(_inspect_block(run, docs, i, texts))
    return "\n".join(lines).rstrip() + "\n"


def _inspect_block(run: RunData, docs: Docs, i: int, texts: Mapping[str, str]) -> list[str]:
    doc_lang = str(docs.strings["lang"][i] or "und")
    status = str(docs.status[i]) + (f": {docs.reason[i]} ({docs.detail[i]})" if docs.reason[i] else "")
    pred = docs.strings["lang_predicted"][i]
    lid = (f"predicted {pred} score {fmt_num(docs.numbers['lang_score'][i])} via {docs.strings['lang_backend'][i]}"
           if pred else f"via {docs.strings['lang_backend'][i] or 'none'}")
    text = texts.get(str(docs.ids[i]), "")
    shown = terminal_safe(text[:INSPECT_CHARS]) + ("…" if len(text) > INSPECT_CHARS else "")
    wrap = textwrap.TextWrapper(width=110, initial_indent="  ", subsequent_indent="  ")
    return ["-" * 110,
            f"id      {terminal_safe(str(docs.ids[i]))}",
            f"status  {terminal_safe(status)}",
            f"lang    {terminal_safe(doc_lang)} ({terminal_safe(lid)}); {fmt_int(docs.numbers['n_chars'][i])} chars",
            *textwrap.wrap("stats   " + _stat_line(docs, i, run.params(doc_lang), run.manifest), width=110,
                           subsequent_indent=" " * 8),
            "text", *(wrap.wrap(shown) or ["  (empty)"]), ""]
