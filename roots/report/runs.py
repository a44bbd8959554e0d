"""Reading a run directory (and a release's manifest) back: documents, exact totals and the facts a page or a
card states about a run, with nothing about how they are shown.

Both the HTML report (`roots.report.page` and the section modules) and the Markdown data cards
(`roots.report.datacard`) read runs through this module, so they agree on what a run did.

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
existed.
"""

from __future__ import annotations

import hashlib
import json
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
from roots.core.schema import SIGNALS, STAT_FIELDS
from roots.io import outputs
from roots.report.fmt import fmt_int
from roots.report.metrics import Metric, lang_params
from roots.stages import quality

_NUMERIC = ("lang_score", "n_chars", "n_bytes", *STAT_FIELDS, "perplexity")
_STRINGS = ("id", "lang", "lang_predicted", "lang_backend", "ppl_status", "pii", "cluster", SIGNALS)
_DOC_COLUMNS = ["id", "lang", "lang_score", "lang_predicted", "lang_backend", "n_chars", "n_bytes",
                *STAT_FIELDS, "perplexity", "ppl_status", "pii", "cluster", SIGNALS]
_SAMPLE_COLUMNS = [*_DOC_COLUMNS, "reason", "detail", "status"]
# Documents per run that the per-document views (statistics, samples, duplicates, language ID) are drawn
# from: at ~1 KB each, the report's peak memory is about REPORT_MAX_DOCS x 1 KB whatever the run's size.
REPORT_MAX_DOCS = 100_000
BATCH_ROWS = 4096  # rows per record batch when a run's Parquet files are streamed


# ============================================================================================ loading
def is_run_dir(path: Path) -> bool:
    """A finished source run: `run_source` writes both files only after the accounting check passed."""
    return (path / "stats.json").is_file() and (path / "manifest.json").is_file()


def read_json(path: Path) -> dict[str, Any]:
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
        return (f'<p class="warn">Drawn from a deterministic sample of {len(self):,} of {self.total:,} '
                "documents (those with the smallest blake2b hash of the id); counts given as totals are "
                "exact.</p>")

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


def doc_batches(run_dir: Path) -> Iterator[pa.Table]:
    """Kept then rejected documents (no text) in record batches, with `reason`, `detail` and `status`.

    Streamed rather than read whole (`outputs.read_kind`) so that memory follows the batch, not the run;
    `pre_buffer=False` and no reader threads, since either loads far more than one batch ahead."""
    for kind, columns in (("kept", _DOC_COLUMNS), ("rejected", [*_DOC_COLUMNS, "reason", "detail"])):
        empty = outputs.SCHEMAS[kind].empty_table().select(columns)
        yield _with_columns(empty, kind).select(_SAMPLE_COLUMNS)  # gives the schema when there are no files
        for path in sorted((run_dir / kind).glob("*.parquet")):
            for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(
                    batch_size=BATCH_ROWS, columns=columns, use_threads=False):
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
                            "b": batch.column("n_bytes").cast(pa.float64())})
        grouped = grouped.group_by(["lang", "status", "reason"])
        for row in grouped.aggregate([([], "count_all"), ("b", "sum")]).to_pylist():
            self.by_lang[(row["lang"], row["status"], row["reason"])] += int(row["count_all"])
            self.bytes_by_lang[row["lang"]] += float(row["b_sum"] or 0.0)
        kept = pc.equal(status, "kept")
        grouped = pa.table({"lang": lang, "pred": batch.column("lang_predicted"), "kept": kept})
        grouped = grouped.group_by(["lang", "pred", "kept"])
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


class Smallest:
    """The `k` rows smallest by `order` (columns, ascending) of the batches streamed past, in O(k) memory.

    Rows pile up to max(2k, `BATCH_ROWS`) before one sort cuts them back to k; once k rows are held, a
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
        if self.rows > max(2 * self.k, BATCH_ROWS):
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
    sample, totals = Smallest(k, ["_key", "id", "status"]), Totals()
    for batch in doc_batches(run_dir):
        totals.add(batch)
        sample.add(_with_doc_key(batch))
    return to_docs(sample.table().drop_columns(["_key"]), totals)


def to_docs(table: pa.Table, totals: Totals | None = None) -> Docs:
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
    """UTF-8 bytes of kept text per language, one record batch at a time (memory does not follow the
    shard)."""
    totals: Counter[str] = Counter()
    for path in sorted((run_dir / "kept").glob("*.parquet")):
        # pre_buffer=False: the default loads every row group's text before the first batch
        for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(
                batch_size=2048, columns=["lang", "text"], use_threads=False):
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
        return cls(run_dir, read_json(run_dir / "stats.json"), read_json(run_dir / "manifest.json"),
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


# ============================================================================================ manifests
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
        shown = ", ".join(f"{k}={v}" for k, v in sorted(settings.items())
                          if k in ("exact", "near", "threshold", "url", "template"))
        return f"deduplication ran ({shown}) and removed no document"
    return "no document was removed as a duplicate (the manifest does not record dedup settings)"


def manifest_entries(value: Any, key: str = "name") -> list[dict[str, Any]]:
    """A manifest list of records given as a list of dicts, or as a mapping name -> dict/str."""
    if isinstance(value, Mapping):
        return [{key: k, **(v if isinstance(v, Mapping) else {"reason": v})}
                for k, v in sorted(value.items())]
    return [dict(v) for v in value or [] if isinstance(v, Mapping)]


def clearance_text(entry: Mapping[str, Any]) -> str:
    """The clearance basis of an included source, whichever way the manifest spelled it."""
    basis = entry.get("clearance", entry.get("basis"))
    if isinstance(basis, Mapping):
        return "; ".join(f"{k}: {v.get('basis', v) if isinstance(v, Mapping) else v}"
                         for k, v in sorted(basis.items()))
    return str(basis) if basis else "not recorded"


def takedowns_text(manifest: Mapping[str, Any]) -> str:
    """Takedowns as documents removed (and by how many requests), whichever way the manifest spelled it;
    a bare list of requests (an older manifest) is reported as requests, not documents."""
    takedowns = manifest.get("takedowns")
    removed = manifest.get("takedown_documents_removed")
    if removed is None and isinstance(takedowns, list):
        counts = [t.get("documents_removed") for t in takedowns if isinstance(t, Mapping)]
        removed = sum(counts) if counts and all(isinstance(c, int) for c in counts) else None
    n_requests = len(takedowns) if isinstance(takedowns, (list, Mapping)) else None
    if removed is None:
        return f"{fmt_int(n_requests)} request(s) filed" if n_requests is not None else "none recorded"
    return (f"{fmt_int(removed)} document(s) removed"
            + (f" ({fmt_int(n_requests)} request(s) filed)" if n_requests is not None else ""))
