"""`roots merge`: the only place sources meet; writes a release a Megatron trainer reads directly.

Order of decisions, each recorded in the release manifest: clearance gate (licence policy or a valid
permission record, at merge time, so a revocation after a run still excludes the source) -> takedowns
-> exact copies within a source (a safety net) -> cross-source near duplicates (from the saved MinHash
signatures) -> per-source sampling ratios -> per-language validation hold-out -> tokenizer training on an
alpha-weighted, line-deduplicated sample -> tokenisation into Megatron shards (Beam) -> blend weights ->
manifest with lineage and hashes.

Memory does not follow the number of kept documents, except where stated. Kept files are read one
record batch at a time (`parts.read_batches`), tokenisation and shard assembly are streamed
(`parts.tokenize_file`, `assemble`), and memory freed by one step is handed back before the next
(`release_freed_memory`). What remains, each bounded where it is defined:
- the tokenizer training sample is capped by `tokenizer_sample_bytes`; the trainer's and the line
  dedup's memory follow the sample's distinct words and lines, so they stop growing once the corpus
  exceeds the cap (`tokenizer_sample`, `tokenizer.train_tokenizer`, `tokenizer.dedup_lines`);
  `tokenizer_file` skips training altogether;
- the encoder's word cache holds at most `tokenizer.ENCODE_WORD_CACHE` words;
- the map of dropped documents has one entry per dropped document (`decide_drops`);
- one lineage row group per shard being written (`LINEAGE_ROW_GROUP`);
- the release report draws its per-document views from at most `runs.REPORT_MAX_DOCS` documents per
  run, one run at a time (about 100 MB; counts stay exact);
- cross-source dedup holds one key bucket and the signatures of documents with a cross-source candidate
  (`roots.dedup.crosssource`);
- fertility is counted while tokenising, as per-language sums (`held_out_fertility`): nothing per document.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
import uuid
from array import array
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from roots import __version__
from roots.core import progress, publishing, schema
from roots.core.errors import JobError, UserError
from roots.core.util import library_versions, sha256_file
from roots.core.workspace import Workspace
from roots.core.yamlio import write_json
from roots.dedup import minhash
from roots.governance import audit, catalogue, changes, clearance, takedowns
from roots.release import megatron, parts, versions
from roots.release import tokenizer as toklib

DEFAULTS: dict[str, Any] = {
    "seed": 42,
    "valid_fraction": 0.05,  # ROOTS held out 5% of each language
    "tokenizer_alpha": 0.3,  # ROOTS's alpha for the tokenizer sample
    "blend_alpha": 1.0,  # 1.0: weights proportional to tokens; < 1 up-samples small languages
    "tokenizer_sample_bytes": 200_000_000,
    "tokenizer_min_frequency": 2,
    "vocab_size": toklib.BLOOM_VOCAB_SIZE,
    "source_ratios": {},  # e.g. {big_english_crawl: 0.5}, as ROOTS capped English
    "dedup": True,
    # exact copies inside one source (a run's own dedup normally leaves none) removed as a safety net
    "within_source_exact_dedup": True,
    # a tokenizer.json to use as is instead of training one (relative: to the workspace)
    "tokenizer_file": None,
    # language groups with fewer tokens (train + valid) than this are too small for a shard of their own
    # (a blend weight of a few hundred tokens is noise, and Megatron's samplers need a few sequences per
    # dataset): `small_languages: fold` puts them together in one `small` group, `refuse` stops the merge
    # with their names. 0 (the default) keeps every language in its own shard, as ROOTS did.
    "min_language_tokens": 0,
    "small_languages": "fold",
}

SMALL_GROUP = "small"
"""The shard group that languages below `min_language_tokens` are folded into."""
VOCAB_TOKENS_PER_ENTRY = 10
"""Below this many training-sample tokens per vocabulary entry, the vocabulary is larger than the corpus
supports (most entries would be seen a handful of times), and the merge says so."""


@dataclass
class Included:
    name: str
    run_dir: Path
    basis: str
    record: str | None
    files: list[Path]
    license: str
    pin: dict[str, Any] = field(default_factory=dict)  # the run as found at the start (`pin_run`)
    scopes: tuple[str, ...] = ("training",)  # what the source is cleared for: training, maybe release


@dataclass
class Plan:
    included: list[Included] = field(default_factory=list)
    excluded: list[dict[str, str]] = field(default_factory=list)


def settings(ws: Workspace) -> dict[str, Any]:
    merged = dict(DEFAULTS)
    merged.update(ws.config().get("merge") or {})
    return merged


def gate(ws: Workspace) -> Plan:
    """Which sources enter and why; every other source is listed with the reason it does not."""
    from roots.jobs.run import finished_manifest

    cards = catalogue.load_all(ws)
    every = clearance.clearance(ws, cards)
    decisions = {d.source: d for d in every if d.scope == "training"}
    released = {d.source for d in every if d.scope == "release" and d.cleared}
    plan = Plan()
    for card in cards:
        d = decisions[card.name]
        if not d.cleared:
            plan.excluded.append({"source": card.name, "reason": f"not cleared for training: {d.basis}"})
            continue
        run_dir = ws.path_setting("runs_dir") / card.name
        if finished_manifest(run_dir) is None:
            plan.excluded.append({"source": card.name, "reason": f"no finished run in {run_dir}; run "
                                  f"`roots run {card.name}` first"})
            continue
        files = sorted((run_dir / "kept").glob("*.parquet"))
        plan.included.append(Included(card.name, run_dir, d.basis, d.record, files, card.license,
                                      pin_run(run_dir, files),
                                      ("training", "release") if card.name in released else ("training",)))
    return plan


def pin_run(run_dir: Path, files: list[Path]) -> dict[str, Any]:
    """What identifies the run a merge reads: its manifest's id and hash, and each kept file's size and
    modification time. The merge holds the runs lock, so a run is not replaced under it by roots; the pin
    catches anything else that replaces it (an older roots, a hand copy) before a release is written."""
    manifest = run_dir / "manifest.json"
    try:
        run_id = json.loads(manifest.read_text(encoding="utf-8")).get("id")
    except (OSError, ValueError):
        run_id = None
    return {"id": run_id, "manifest_sha256": sha256_file(manifest),
            "files": {p.name: _file_stamp(p) for p in files}}


def _file_stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def check_pins(plan: Plan) -> None:
    """Fail the merge if a run it pinned at the start is not the run in place now (see `pin_run`)."""
    for inc in plan.included:
        try:
            now = pin_run(inc.run_dir, sorted((inc.run_dir / "kept").glob("*.parquet")))
        except OSError:
            now = {}
        if now != inc.pin:
            was, found = inc.pin.get("id") or inc.pin.get("manifest_sha256", "?")[:12], (
                now.get("id") or (now.get("manifest_sha256") or "none")[:12])
            raise JobError(f"the run of {inc.name} in {inc.run_dir} was replaced while the merge read it "
                           f"(pinned run {was}, found {found}); the release was not written: merge again, "
                           "it will read the new run.")


def _iter_kept(inc: Included, columns: list[str]) -> Iterator[dict[str, Any]]:
    """The kept rows of a source, `columns` only, one record batch in memory at a time."""
    for path in inc.files:
        for batch in parts.read_batches(path, columns):
            yield from batch.to_pylist()


def cross_source_duplicates(plan: Plan, cfg: dict[str, Any]) -> dict[str, str]:
    """Near duplicates across sources from the saved signatures; keeps the copy of the preferred source.

    Preference, documented for data owners: a source cleared by licence policy beats one cleared by a
    (revocable) permission record; then the source listed first alphabetically; then the lowest id.
    """
    if not cfg.get("dedup", True) or len(plan.included) < 2:
        return {}
    from roots.dedup import crosssource

    return crosssource.duplicates_across(plan.included)


def decide_drops(plan: Plan, takedown_list: list[takedowns.Takedown], cfg: dict[str, Any],
                 dups: dict[str, str], hits: Counter[str] | None = None,
                 ) -> tuple[dict[str, str], dict[str, Counter[str]]]:
    """(document key -> why it leaves the release, per-source counts of each cause).

    Causes, first match wins: a takedown, an exact copy of another kept document of the same source (a
    safety net: a run's dedup leaves none, but a run with exact dedup switched off, or an edited run,
    could; the lowest id stays), a near duplicate in another source, sampling by `source_ratios`.

    Memory: the returned map holds one entry per dropped document, and the safety net 8 bytes per kept
    document of the source being read (its exact-hash prefixes, `array('Q')`), so what grows is what is
    dropped plus that array. Text is read only for the takedowns and the safety net.
    """
    drops: dict[str, str] = {}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    ratios = cfg.get("source_ratios") or {}
    safety = bool(cfg.get("within_source_exact_dedup", True))
    for inc in plan.included:
        mine = [t for t in takedown_list if t.source == inc.name]
        ratio = float(ratios.get(inc.name, 1.0))
        keys = array("Q")  # per kept row, in file order: 0 for no key (taken down, or nothing to hash)
        if mine or safety:
            for row in _iter_kept(inc, ["id", "url", "text", "lang"]):
                hit = (takedowns.first_hit(mine, inc.name, row["id"], row["url"], row["text"])
                       if mine else None)
                if hit is not None:
                    drops[schema.doc_key(inc.name, row["id"])] = f"takedown {hit.id}: {hit.reason}"
                    counts[inc.name]["takedown"] += 1
                    if hits is not None:  # documents each takedown removed, for the manifest
                        hits[hit.id] += 1
                digest = minhash.exact_key(row["text"], row["lang"]) if safety and hit is None else None
                # 64 bits of the exact hash; 0 means "no key", so a zero prefix is nudged to 1
                keys.append(0 if digest is None else max(1, int(digest[:16], 16)))
        copies = _within_source_copies(inc, keys) if safety else {}
        for row in _iter_kept(inc, ["id"]):
            key = schema.doc_key(inc.name, row["id"])
            if key in drops:
                continue
            why = None
            if row["id"] in copies:
                why = f"exact duplicate of {inc.name}/{copies[row['id']]} in the same source"
                cause = "within_source_duplicate"
            elif key in dups:
                why, cause = dups[key], "cross_source_duplicate"
            elif ratio < 1.0 and parts.unit_hash(int(cfg["seed"]), inc.name, row["id"]) >= ratio:
                why, cause = f"sampled out (source ratio {ratio})", "sampled_out"
            if why is not None:
                drops[key] = why
                counts[inc.name][cause] += 1
    return drops, counts


def _within_source_copies(inc: Included, keys: array) -> dict[str, str]:
    """{id: id of the copy that stays} for kept documents of `inc` whose exact hash repeats (`keys`, one
    per kept row in file order); one more read of the ids, only when some hash repeats."""
    values = np.frombuffer(keys, dtype=np.uint64) if len(keys) else np.zeros(0, dtype=np.uint64)
    uniq, n = np.unique(values[values != 0], return_counts=True)
    repeated = set(uniq[n > 1].tolist())
    if not repeated:
        return {}
    groups: dict[int, list[str]] = defaultdict(list)
    for i, row in enumerate(_iter_kept(inc, ["id"])):
        if int(values[i]) in repeated:
            groups[int(values[i])].append(str(row["id"]))
    copies = {}
    for ids in groups.values():
        keeper = min(ids)
        copies.update({i: keeper for i in ids if i != keeper})
    return copies


def tokenizer_sample(plan: Plan, drops: dict[str, str], cfg: dict[str, Any]) -> Iterator[str]:
    """Alpha-weighted per-language sample (two streaming passes: sizes, then selection), line-deduplicated.

    The texts are yielded one at a time, straight from the kept files, so the sample is never held: what
    grows with it is the trainer's vocabulary state and the dedup's set of line digests, and the sample
    itself stops growing at `tokenizer_sample_bytes` (expected size; the selection is per document).
    """
    sizes: Counter[str] = Counter()
    for inc in plan.included:
        for row in _iter_kept(inc, ["id", "lang", "n_bytes"]):
            if schema.doc_key(inc.name, row["id"]) not in drops:
                sizes[parts.group_of(row["lang"])] += int(row["n_bytes"] or 0)
    total = sum(sizes.values())
    if total == 0:
        return iter(())
    alpha = float(cfg["tokenizer_alpha"])
    q = {lang: (n / total) ** alpha for lang, n in sizes.items()}
    z = sum(q.values())
    budget = float(cfg["tokenizer_sample_bytes"])
    prob = {lang: min(1.0, budget * q[lang] / z / n) for lang, n in sizes.items() if n}

    def selected() -> Iterator[str]:
        for inc in plan.included:
            for row in _iter_kept(inc, ["id", "lang", "text"]):
                key = schema.doc_key(inc.name, row["id"])
                lang = parts.group_of(row["lang"])
                if (key not in drops
                        and parts.unit_hash(int(cfg["seed"]) + 7, inc.name, row["id"]) < prob[lang]):
                    yield row["text"]

    return toklib.dedup_lines(selected())


def release_freed_memory() -> None:
    """Hand memory freed by the step just finished back to the system before the next step starts.

    The merge's steps run one after another in one process, and each frees what it built, but glibc keeps
    freed heap pages (in the arenas of the threads the tokenizer and Arrow ran on) for reuse: without
    this, the process's peak is the sum of the steps' high-water marks rather than the largest of them.
    A no-op where the C library is not glibc.
    """
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def blend(tokens: dict[str, dict[str, int]], alpha: float) -> dict[str, Any]:
    """Per-language weights for megatron-core (`--data-path` string and `--per-split-data-args-path` JSON)."""
    train = {g: t["train"] for g, t in tokens.items() if t.get("train")}
    total = sum(train.values())
    raw = {g: (n / total) ** alpha for g, n in train.items()} if total else {}
    z = sum(raw.values())
    weights = {g: round(v / z, 8) for g, v in sorted(raw.items())}
    per_split: dict[str, list[str] | None] = {"train": [], "valid": [], "test": None}
    for g, w in weights.items():
        per_split["train"] += [str(w), f"shards/{g}_text_document"]
    valid = {g: t["valid"] for g, t in tokens.items() if t.get("valid")}
    vz = sum(valid.values())
    for g, n in sorted(valid.items()):
        per_split["valid"] += [str(round(n / vz, 8)), f"shards/{g}_valid_text_document"]
    return {
        "alpha": alpha,
        "weights": weights,
        "tokens": {g: tokens[g] for g in sorted(tokens)},
        "data_path": " ".join(f"{w} shards/{g}_text_document" for g, w in weights.items()),
        "per_split_data_args": per_split,
        "note": "paths are relative to the release directory; run the trainer from there or prefix them",
    }


def supplied_tokenizer(ws: Workspace, value: Any) -> Any:
    """The tokenizer named by the merge setting `tokenizer_file`, loaded; None when it is not set."""
    if not value:
        return None
    path = Path(str(value))
    path = path if path.is_absolute() else ws.root / path
    if not path.is_file():
        raise UserError(f"merge setting `tokenizer_file`: {path} is not a file; give the path of a "
                        "tokenizer.json, or remove the setting to train the tokenizer.")
    try:
        tok = toklib.load(path)
    except Exception as exc:  # noqa: BLE001 (tokenizers raises a bare Exception for a malformed file)
        raise UserError(f"merge setting `tokenizer_file`: {path} is not a tokenizer.json ({exc}).") from None
    missing = [t for t in toklib.SPECIAL_TOKENS if tok.token_to_id(t) is None]
    if missing:
        raise UserError(f"merge setting `tokenizer_file`: {path} lacks the special token(s) "
                        f"{', '.join(missing)} "
                        "that the release needs (</s> is the end-of-document token).")
    return tok


@dataclass
class MergeResult:
    out_dir: Path
    manifest: dict[str, Any]


def merge(ws: Workspace, out: Path | None = None, vocab_size: int | None = None,
          beam_args: list[str] | None = None, force: str | None = None) -> MergeResult:
    """Merge under two locks: the merge lock (exclusive, so a second merge is refused, not raced) and the
    runs lock (shared, so no run is swapped while the merge reads it; a run that finishes meanwhile waits).

    `force`: the reason to merge although `governance verify` fails (recorded in the audit trail)."""
    with (publishing.flock(ws.root / publishing.MERGE_LOCK, exclusive=True, wait_s=0,
                           what="another merge is in progress in this workspace; two merges at once are "
                                "refused"),
          publishing.flock(ws.root / publishing.RUNS_LOCK, exclusive=False, wait_s=None,
                           waiting="  waiting for a run to finish putting its output in place ...")):
        return _merge(ws, out, vocab_size, beam_args, force)


def _merge(ws: Workspace, out: Path | None, vocab_size: int | None,
           beam_args: list[str] | None, force: str | None) -> MergeResult:
    from pipelines import merge_pipeline
    from roots.io.outputs import bounded_arrow_memory

    changes.require_intact(ws, "merge", force)
    bounded_arrow_memory()
    cfg = settings(ws)
    if vocab_size is not None:
        cfg["vocab_size"] = vocab_size
    if int(cfg["vocab_size"]) < 260:
        raise UserError("--vocab-size must be at least 260 (256 bytes + 4 special tokens).")
    supplied = supplied_tokenizer(ws, cfg.get("tokenizer_file"))
    plan = gate(ws)
    if not plan.included:
        reasons = "; ".join(f"{e['source']}: {e['reason']}" for e in plan.excluded) or "no sources registered"
        raise UserError(f"no source may enter a release ({reasons}).")
    started = dt.datetime.now(dt.UTC)
    # `--out DIR`: that directory, replaced as a whole; otherwise a new version under the release root
    root = None if out else ws.path_setting("release_dir")
    rid = versions.new_id(started)
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
        versions.adopt_unversioned(root)
        versions.clean_leftovers(root)  # the merge lock is ours: nothing else writes there now
        final = root / rid
        tmp = root / f".{rid}{publishing.TMP_MARK}{uuid.uuid4().hex[:8]}"
    else:
        final = Path(out)  # type: ignore[arg-type]
        final.parent.mkdir(parents=True, exist_ok=True)
        publishing.recover(final)
        for stale in final.parent.glob(f".{final.name}{publishing.TMP_MARK}*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = publishing.temp_dir_for(final)
    (tmp / "shards").mkdir(parents=True)
    warnings: list[str] = []
    shown = progress.Progress("merge")
    shown.start()
    try:
        takedown_list = takedowns.load_all(ws)
        shown.phase("cross-source dedup")
        dups = cross_source_duplicates(plan, cfg)
        takedown_hits: Counter[str] = Counter()
        drops, drop_counts = decide_drops(plan, takedown_list, cfg, dups, takedown_hits)
        from roots.jobs import decontam  # evaluation sets registered after a source's run (issue 23)

        decontamination = decontam.at_merge(ws, plan, drops, drop_counts)
        t_tok, c_tok = time.perf_counter(), time.process_time()
        if supplied is not None:
            shown.phase(f"using the tokenizer {cfg['tokenizer_file']} (not training one)")
            tok = supplied
        else:
            shown.phase(f"training the tokenizer (vocabulary {cfg['vocab_size']})")
            sample = _Counted(tokenizer_sample(plan, drops, cfg))
            tok = toklib.train_tokenizer(sample, vocab_size=int(cfg["vocab_size"]),
                                         min_frequency=int(cfg["tokenizer_min_frequency"]))
            release_freed_memory()
            warnings += vocabulary_warnings(int(cfg["vocab_size"]), tok.get_vocab_size(), sample.chars)
        timings = {"tokenizer_train_s": round(time.perf_counter() - t_tok, 3),
                   "tokenizer_train_cpu_s": round(time.process_time() - c_tok, 3)}
        toklib.save_hf_files(tok, tmp)
        tasks = [{"index": i, "source": inc.name, "path": str(path), "clearance": inc.basis,
                  "record": inc.record}
                 for i, (inc, path) in enumerate((inc, p) for inc in plan.included for p in inc.files)]
        parts_dir = tmp / "_parts"
        shown.poll = lambda: progress.Snapshot(  # the files tokenised so far (parts.tokenize_file marks each)
            "tokenizing kept files", units=len(list((parts_dir / "_done").glob("*.json"))),
            units_total=len(tasks))
        t_sh, c_sh = time.perf_counter(), time.process_time()
        merge_pipeline.run(tasks, drops, str(tmp / "tokenizer.json"), str(parts_dir),
                           float(cfg["valid_fraction"]), int(cfg["seed"]), beam_args or [])
        shown.phase("assembling shards")
        c_asm = time.process_time()
        release_freed_memory()
        folded: dict[str, str] = {}
        tokens, docs = assemble(parts_dir, tmp, len(tasks), int(cfg["min_language_tokens"] or 0),
                                str(cfg["small_languages"]), folded)
        assemble_cpu = time.process_time() - c_asm
        timings["tokenize_and_write_s"] = round(time.perf_counter() - t_sh, 3)
        timings["tokenize_and_write_cpu_s"] = round(time.process_time() - c_sh, 3)
        timings.update(shard_writing_timings(parts_dir, assemble_cpu))
        held_out = held_out_fertility(parts_dir)
        shutil.rmtree(parts_dir)
        release_freed_memory()
        blend_data = blend(tokens, float(cfg["blend_alpha"]))
        write_json(tmp / "blend.json", blend_data)
        write_json(tmp / "per_split_data_args.json", blend_data["per_split_data_args"])
        from roots.report import datacard, page

        shown.phase("writing the card, manifest and report")
        per_source = per_source_counts(tmp)
        view = card_view(plan, tokens, docs, takedown_list, per_source, takedown_hits)
        view["name"] = rid if root is not None else final.name
        view["created"] = started.isoformat(timespec="seconds")
        if folded:
            view["folded_languages"] = {SMALL_GROUP: sorted(folded)}
        view["decontamination"] = decontamination
        datacard.write_release_card(tmp, view)
        manifest = build_manifest(ws, plan, cfg, takedown_list, drop_counts, tokens, docs, tmp, tok,
                                  started, view, takedown_hits)
        manifest["timings"] = timings
        manifest["decontamination"] = decontamination
        manifest["fertility"] = held_out
        manifest["warnings"] = warnings
        manifest["folded_languages"] = view.get("folded_languages", {})
        write_json(tmp / "manifest.json", manifest)
        release_freed_memory()
        page.build_report(tmp)  # reads the manifest; its own hash is added afterwards
        manifest["files_sha256"]["report.html"] = sha256_file(tmp / "report.html")
        write_json(tmp / "manifest.json", manifest)
        check_pins(plan)  # every run read is the run pinned at the start, or nothing is published
        if root is not None:
            final = versions.publish_release(tmp, root, rid)
        else:
            publishing.swap_into_place(tmp, final)
    except BaseException:
        shown.close("failed")
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shown.close("done")
    return MergeResult(final, manifest)


# Rows per row group of a shard's lineage file. The assembly buffers one row group per shard being written,
# so this is the lineage's memory bound: 65,536 rows of ~100-200 bytes, ~10 MB (pyarrow's write_table default,
# 1M rows, would let it reach ~200 MB on a large shard).
LINEAGE_ROW_GROUP = 64 * 1024
# Token bytes copied from a partial segment per read.
COPY_BLOCK = 8 << 20


def fold_small_groups(group_tokens: dict[str, int], min_tokens: int, mode: str) -> dict[str, str]:
    """{group: the group it is written to}: groups with fewer than `min_tokens` tokens go to `SMALL_GROUP`
    (mode `fold`), or the merge stops naming them (mode `refuse`); {} when nothing is folded."""
    small = sorted(g for g, n in group_tokens.items() if n < min_tokens) if min_tokens > 0 else []
    if not small:
        return {}
    listed = ", ".join(f"{g} ({group_tokens[g]:,} tokens)" for g in small)
    if mode == "refuse":
        raise UserError(f"language group(s) below merge.min_language_tokens ({min_tokens:,}): {listed}. Add "
                        "data, lower the setting, or set `merge: {small_languages: fold}` in roots.yaml to "
                        f"put them together in one `{SMALL_GROUP}` shard.")
    if mode != "fold":
        raise UserError(f"merge setting `small_languages`: {mode!r}; use fold or refuse.")
    if SMALL_GROUP in group_tokens and SMALL_GROUP not in small:
        raise UserError(f"a language group is called {SMALL_GROUP!r}, the name small languages are folded "
                        "into; set merge.min_language_tokens to 0 for this corpus.")
    return {g: SMALL_GROUP for g in small}


def assemble(parts_dir: Path, out: Path, n_tasks: int, min_tokens: int = 0, mode: str = "fold",
             folded: dict[str, str] | None = None) -> tuple[dict[str, dict[str, int]], dict[str, Any]]:
    """Concatenate each (group, split)'s ranges of the partial outputs in input-file order into its shard;
    lineage in the same order (see `parts.tokenize_file` for the partial layout).

    Memory does not follow the shard's size: token bytes are copied in blocks of `COPY_BLOCK` (read, not
    memory-mapped: mapped pages stay in the process's RSS while the map is open), the `.idx` is written
    piece by piece (`megatron.write_pieces`), and the lineage one row group at a time. What remains is
    one row group of lineage (`LINEAGE_ROW_GROUP` rows, about 100-200 bytes each) and the list of ranges,
    one small entry per (segment, group, split).

    Groups below `min_tokens` are folded into one (`fold_small_groups`; `folded` receives the mapping):
    their ranges simply go to the same shard, and the lineage keeps each document's language.
    """
    done_dir = parts_dir / "_done"
    done = sorted(done_dir.glob("*.json")) if done_dir.exists() else []
    if len(done) != n_tasks:
        from roots.core.errors import JobError

        raise JobError(f"tokenisation finished {len(done)} of {n_tasks} files; the release was not written")
    pieces: dict[tuple[str, str], list[tuple[dict[str, Any], str, int, int, int]]] = defaultdict(list)
    counts: Counter[tuple[str, str]] = Counter()
    dtypes = set()
    records = [json.loads(path.read_text()) for path in done]  # zero-padded: input-file order
    group_tokens: Counter[str] = Counter()
    for record in records:
        for seg in record["segments"]:
            for group, _, _, n_tokens in seg["keys"]:
                group_tokens[group] += n_tokens
    fold = fold_small_groups(dict(group_tokens), min_tokens, mode)
    if folded is not None:
        folded.update(fold)
    for record in records:
        dtypes.add(record["dtype"])
        for seg in record["segments"]:
            offset = 0
            for batch, (group, split, n_docs, n_tokens) in enumerate(seg["keys"]):
                group = fold.get(group, group)
                pieces[(group, split)].append((record, seg["name"], batch, offset, n_tokens))
                counts[(group, split)] += n_docs
                offset += n_tokens
    if len(dtypes) > 1:
        raise RuntimeError(f"partial outputs of different token dtypes: {sorted(dtypes)}")
    dtype = np.dtype(dtypes.pop()) if dtypes else None
    tokens: dict[str, dict[str, int]] = defaultdict(lambda: {"train": 0, "valid": 0})
    docs: dict[str, Any] = defaultdict(lambda: {"train": 0, "valid": 0})
    lineage_dir = out / "lineage"
    lineage_dir.mkdir(parents=True, exist_ok=True)
    segments = _Segments(parts_dir)
    try:
        for (group, split) in sorted(pieces):
            name = f"{group}_text_document" if split == "train" else f"{group}_valid_text_document"
            n_tokens = _write_shard(out / "shards" / name, lineage_dir / f"{name}.parquet",
                                    pieces[(group, split)], counts[(group, split)], segments, dtype)
            tokens[group][split] = n_tokens
            docs[group][split] = counts[(group, split)]
    finally:
        segments.close()
    return dict(tokens), dict(docs)


def _write_shard(prefix: Path, lineage_path: Path, ranges: list[tuple[dict[str, Any], str, int, int, int]],
                 n_docs: int, segments: _Segments, dtype: np.dtype) -> int:
    """One shard's `.bin`/`.idx` and lineage from its ranges of the partial segments; returns its tokens."""
    lineage = _LineageWriter(lineage_path)
    n_tokens = 0

    def shard_pieces() -> Iterator[tuple[Iterator[bytes], np.ndarray]]:
        nonlocal n_tokens
        for record, seg_name, batch, offset, count in ranges:
            table = _lineage_table(segments.lineage(seg_name).get_batch(batch), record)
            lineage.add(table)
            sizes = table.column("tokens").to_numpy()
            n_tokens += int(sizes.sum())
            yield segments.token_bytes(seg_name, offset * dtype.itemsize, count * dtype.itemsize), sizes

    try:
        # the release directory is published as a whole, so its files need no rename of their own
        megatron.write_pieces(prefix, shard_pieces(), n_docs, dtype, atomic=False)
        lineage.close()
    except BaseException:
        lineage.abort()
        raise
    return n_tokens


class _LineageWriter:
    """A shard's lineage Parquet file written one row group at a time, with `document_index` numbered
    across the shard; the same bytes as `pq.write_table(whole table, row_group_size=LINEAGE_ROW_GROUP)`
    (same row groups, each a slice of the same pieces, its `document_index` as a slice of the whole one)."""

    SCHEMA = pa.schema([pa.field("document_index", pa.int64()), *parts.LINEAGE_SCHEMA])

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: pq.ParquetWriter | None = None
        self.buffered: list[pa.Table] = []
        self.n_buffered = 0
        self.n_written = 0

    def add(self, table: pa.Table) -> None:
        self.buffered.append(table)
        self.n_buffered += table.num_rows
        while self.n_buffered >= LINEAGE_ROW_GROUP:
            rows = pa.concat_tables(self.buffered)
            self._write(rows.slice(0, LINEAGE_ROW_GROUP))
            rest = rows.slice(LINEAGE_ROW_GROUP)
            self.buffered, self.n_buffered = [rest], rest.num_rows

    def _write(self, rows: pa.Table) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.SCHEMA, compression="zstd", write_statistics=True)
        index = pa.array(np.arange(self.n_written, self.n_written + rows.num_rows), pa.int64())
        self.writer.write_table(rows.add_column(0, "document_index", index), row_group_size=LINEAGE_ROW_GROUP)
        self.n_written += rows.num_rows

    def close(self) -> None:
        if self.n_buffered or self.writer is None:
            self._write(pa.concat_tables(self.buffered) if self.buffered
                        else parts.LINEAGE_SCHEMA.empty_table())
        self.buffered, self.n_buffered = [], 0
        assert self.writer is not None
        self.writer.close()

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.path.unlink(missing_ok=True)


class _Segments:
    """Open partial segments (token file descriptor, lineage reader), the most recent `keep` of them:
    each shard reads a range from every segment holding its language, so reopening per range would cost
    one open per (shard, segment) pair."""

    def __init__(self, parts_dir: Path, keep: int = 64) -> None:
        self.parts_dir = parts_dir
        self.keep = keep
        self.open: OrderedDict[str, tuple[int, Any, Any]] = OrderedDict()

    def _get(self, name: str) -> tuple[int, Any, Any]:
        if name in self.open:
            self.open.move_to_end(name)
        else:
            if len(self.open) >= self.keep:
                self._close(self.open.popitem(last=False)[1])
            bin_path, arrow_path = parts.segment_paths(self.parts_dir, name)
            lineage = pa.OSFile(str(arrow_path))  # read, not mapped: mapped pages would count in RSS
            self.open[name] = (os.open(bin_path, os.O_RDONLY), lineage, pa.ipc.open_file(lineage))
        return self.open[name]

    def lineage(self, name: str) -> Any:
        return self._get(name)[2]

    def token_bytes(self, name: str, start: int, length: int) -> Iterator[bytes]:
        """Bytes [start, start + length) of the segment's tokens, in blocks of at most `COPY_BLOCK`."""
        fd = self._get(name)[0]
        end = start + length
        while start < end:
            block = os.pread(fd, min(COPY_BLOCK, end - start), start)
            if not block:
                raise RuntimeError(f"partial segment {name} ends before byte {end}")
            start += len(block)
            yield block

    @staticmethod
    def _close(entry: tuple[int, Any, Any]) -> None:
        os.close(entry[0])
        entry[1].close()

    def close(self) -> None:
        while self.open:
            self._close(self.open.popitem()[1])


def held_out_fertility(parts_dir: Path) -> dict[str, dict[str, Any]]:
    """Tokenizer fertility of the validation split, from the per-file sums the tokenisation recorded: the
    same numbers as `fertility.fertility_from_lineage` on the built release, without a second encoding pass
    and without holding the held-out ids."""
    from roots.release import fertility

    total: fertility.Sums = {}
    for path in sorted((parts_dir / "_done").glob("*.json")):
        fertility.add_sums(total, json.loads(path.read_text()).get("fertility") or {})
    return fertility.summarise(total)


def shard_writing_timings(parts_dir: Path, assemble_cpu_s: float) -> dict[str, float]:
    """CPU seconds of shard writing itself: every file's tokenisation into partial outputs (measured inside
    `tokenize_file`, on whichever worker ran it, the tokenizer's threads included) plus the assembly of
    the shards and lineage. The Beam step's own overhead is what `tokenize_and_write_cpu_s` adds."""
    tokenize_cpu = sum(json.loads(p.read_text())["cpu_s"]
                       for p in sorted((parts_dir / "_done").glob("*.json")))
    return {"shard_tokenize_cpu_s": round(tokenize_cpu, 3), "shard_assemble_cpu_s": round(assemble_cpu_s, 3),
            "shard_writing_cpu_s": round(tokenize_cpu + assemble_cpu_s, 3)}


def _lineage_table(rows: pa.RecordBatch, record: dict[str, Any]) -> pa.Table:
    """A segment's lineage rows with the per-file columns (source, clearance, permission record) added."""
    n = rows.num_rows
    constant = {name: pa.repeat(pa.scalar(record[key], pa.string()), n)
                for name, key in (("source", "source"), ("clearance", "clearance"),
                                  ("permission_record", "permission_record"))}
    return pa.Table.from_arrays([constant[f.name] if f.name in constant else rows.column(f.name)
                                 for f in parts.LINEAGE_SCHEMA], schema=parts.LINEAGE_SCHEMA)


def per_source_counts(release_dir: Path) -> dict[str, dict[str, int]]:
    """{source: {documents, tokens}} in the written shards, from their lineage (two columns, one row group
    at a time)."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"documents": 0, "tokens": 0})
    for path in sorted((release_dir / "lineage").glob("*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(columns=["source", "tokens"]):
            table = pa.Table.from_batches([batch]).group_by("source").aggregate(
                [("tokens", "sum"), ("tokens", "count")])
            for row in table.to_pylist():
                counts[row["source"]]["documents"] += int(row["tokens_count"])
                counts[row["source"]]["tokens"] += int(row["tokens_sum"] or 0)
    return dict(counts)


def scope_text(scopes: tuple[str, ...] | list[str]) -> str:
    """What a source is cleared for, as the release card says it."""
    if "release" in scopes:
        return "training and redistribution"
    return "training only (not for redistribution)"


def card_view(plan: Plan, tokens: dict[str, dict[str, int]], docs: dict[str, Any],
              takedown_list: list[takedowns.Takedown],
              per_source: dict[str, dict[str, int]] | None = None,
              takedown_hits: Counter[str] | None = None) -> dict[str, Any]:
    """The release as the data card and report read it: sources with clearance, the scope each is cleared
    for and what each contributes, exclusions, languages, and takedowns as documents removed."""
    per_source = per_source or {}
    hits = takedown_hits or Counter()
    sources = []
    for inc in plan.included:
        mine = per_source.get(inc.name, {})
        sources.append({"name": inc.name, "clearance": inc.basis, "license": inc.license,
                        "run_dir": str(inc.run_dir), "scopes": list(inc.scopes),
                        "cleared_for": scope_text(inc.scopes),
                        "documents": mine.get("documents", 0), "tokens": mine.get("tokens", 0)})
    return {
        "name": "release",
        "sources": sources,
        "excluded": [{"name": e["source"], "reason": e["reason"]} for e in plan.excluded],
        "languages": {g: {"documents": docs[g]["train"] + docs[g]["valid"],
                          "tokens": tokens[g]["train"] + tokens[g]["valid"]} for g in sorted(tokens)},
        "takedowns": [{"id": t.id, "source": t.source, "reason": t.reason,
                       "documents_removed": hits.get(t.id, 0)} for t in takedown_list],
        "takedown_documents_removed": sum(hits.values()),
        "tokens": sum(t["train"] + t["valid"] for t in tokens.values()),
        "documents": sum(d["train"] + d["valid"] for d in docs.values()),
    }


class _Counted:
    """An iterator of texts that counts the characters it hands out (the tokenizer sample's size)."""

    def __init__(self, texts: Iterator[str]) -> None:
        self.texts, self.chars = iter(texts), 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        text = next(self.texts)
        self.chars += len(text)
        return text


def vocabulary_warnings(asked: int, learned: int, sample_chars: int) -> list[str]:
    """Warnings, printed and recorded in the manifest, when the vocabulary is larger than the corpus
    supports: the trainer ran out of pairs to merge before reaching the size asked for, or the sample
    holds fewer than `VOCAB_TOKENS_PER_ENTRY` characters per entry (a rough floor: a BPE token covers
    several characters, so each entry would be seen only a few times)."""
    out = []
    if learned < asked:
        out.append(f"the tokenizer learned {learned:,} of the {asked:,} vocabulary entries asked for: the "
                   "corpus has no more pairs to merge. Lower --vocab-size (or merge.vocab_size), or add "
                   "data.")
    elif sample_chars < VOCAB_TOKENS_PER_ENTRY * asked:
        out.append(f"the vocabulary ({asked:,} entries) is large for a tokenizer sample of {sample_chars:,} "
                   f"characters (under {VOCAB_TOKENS_PER_ENTRY} per entry): most entries will be rare. "
                   "Lower --vocab-size (or merge.vocab_size), or add data.")
    for line in out:
        print(f"  warning: {line}", flush=True)
    return out


def build_manifest(ws: Workspace, plan: Plan, cfg: dict[str, Any], takedown_list: list[takedowns.Takedown],
                   drop_counts: dict[str, Counter[str]], tokens: dict[str, dict[str, int]],
                   docs: dict[str, Any], out: Path, tok: Any, started: dt.datetime,
                   view: dict[str, Any], takedown_hits: Counter[str] | None = None) -> dict[str, Any]:
    takedown_hits = takedown_hits or Counter()
    sources = []
    for inc in plan.included:
        run_manifest = json.loads((inc.run_dir / "manifest.json").read_text())
        stats = json.loads((inc.run_dir / "stats.json").read_text())
        langs = {lang: {"kept": v["kept"]} for lang, v in stats["languages"].items() if v["kept"]}
        counted = next((v for v in view["sources"] if v["name"] == inc.name), {})
        sources.append({
            "source": inc.name, "clearance": inc.basis, "permission_record": inc.record,
            "cleared_for": list(inc.scopes),
            "documents": counted.get("documents"), "tokens": counted.get("tokens"),
            "run": {"id": inc.pin.get("id"), "manifest_sha256": inc.pin.get("manifest_sha256"),
                    "finished": run_manifest.get("finished"), "config_hash": run_manifest.get("config_hash"),
                    "input_fingerprint": run_manifest["input"]["fingerprint"]},
            "documents_kept_by_run": stats["documents"]["kept"], "bytes_kept_by_run": stats["bytes"]["out"],
            "languages": langs,
            "removed_at_merge": dict(sorted(drop_counts.get(inc.name, Counter()).items())),
        })
    files = {str(p.relative_to(out)): sha256_file(p) for p in sorted(out.rglob("*")) if p.is_file()
             and p.name != "manifest.json"}
    shard_tokens = {f"shards/{g}_{'text' if s == 'train' else 'valid_text'}_document": n
                    for g, t in tokens.items() for s, n in t.items() if n}
    return {
        **{k: view[k] for k in ("name", "sources", "excluded", "languages")},
        "created": view.get("created") or started.isoformat(timespec="seconds"),
        "roots_version": __version__,
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sources_included": sources,
        "sources_excluded": plan.excluded,
        "takedowns": view["takedowns"],
        "takedown_documents_removed": view["takedown_documents_removed"],
        "takedowns_applied": sum(c["takedown"] for c in drop_counts.values()),
        "configuration": {k: v for k, v in cfg.items()},
        "tokenizer": {"vocab_size": tok.get_vocab_size(), "eod_id": toklib.eod_id(tok),
                      "dtype": megatron.dtype_for_vocab(tok.get_vocab_size()).__name__},
        "documents": docs,
        "tokens": tokens,
        "shard_tokens": shard_tokens,
        "files_sha256": files,
        "versions": library_versions(("tokenizers", "pyarrow", "apache_beam")),
        "lineage": ("lineage/<shard>.parquet: document_index -> source, id, url, tokens, clearance, "
                    "permission_record"),
        "host": os.uname().nodename,
        "audit_head": audit.head(ws),  # `governance verify` checks the trail still contains it
    }
