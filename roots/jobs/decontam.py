"""Evaluation sets for decontamination: registering one (`roots decontam add`) and checking, at merge, the
sets registered after a source's run.

A registration lives in the workspace under `decontam/NAME/`: `registration.json` (the file's path and
sha256, the fields read, n, item and n-gram counts, when) and `ngrams.npy`, the index built once here and
memory-mapped by every worker (`roots.stages.decontam`). Runs record the sets they checked (name, file
hash, n) in their configuration; the merge checks each included source's kept documents against every
set its run did not, so a benchmark published after a run still cannot enter a release, and the release
manifest says which sets were checked where and what each removed.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from roots.core import publishing, schema
from roots.core.errors import UserError
from roots.core.util import sha256_file
from roots.core.workspace import Workspace
from roots.stages import decontam

FORMATS = ("jsonl", "text")


def root_of(ws: Workspace) -> Path:
    return ws.root / "decontam"


def sets_of(ws: Workspace) -> tuple[decontam.EvalSet, ...]:
    """Every evaluation set registered in the workspace, by name."""
    return decontam.registered_sets(root_of(ws))


def read_items(path: Path, fmt: str, fields: list[str]) -> Iterator[str]:
    """The text of each item: the chosen fields of a JSON line joined by spaces, or a line of text."""
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            if fmt == "text":
                yield line
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise UserError(
                    f"{path}:{number}: not a JSON object ({exc}); fix the line or remove it."
                ) from None
            if not isinstance(record, dict):
                raise UserError(f"{path}:{number}: a JSON object is expected, got {type(record).__name__}.")
            missing = [f for f in fields if f not in record]
            if missing:
                raise UserError(
                    f"{path}:{number}: field(s) {', '.join(missing)} missing; the record has "
                    f"{', '.join(sorted(record)) or 'no fields'}. Choose --field from those."
                )
            parts = []
            for f in fields:
                value = record[f]
                parts.extend(map(str, value) if isinstance(value, list) else [str(value)])
            yield " ".join(parts)


def register(
    ws: Workspace,
    name: str,
    path: Path,
    fmt: str = "jsonl",
    fields: list[str] | None = None,
    n: int = decontam.DEFAULT_N,
) -> dict[str, Any]:
    """Build and store the index of an evaluation set; replaces an earlier registration of that name."""
    from roots.stages.classifier import NAME_RE

    if not NAME_RE.fullmatch(name):
        raise UserError(
            f"evaluation set name {name!r} must be lower-case letters, digits and _ (starting "
            "with a letter), e.g. `mmlu`."
        )
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r} is not supported; use one of {', '.join(FORMATS)}.")
    fields = [f for f in (fields or []) if f]
    if fmt == "jsonl" and not fields:
        raise UserError("--field is required with --format jsonl, e.g. --field question,answer.")
    if n < 3:
        raise UserError(f"--ngram must be at least 3 (shorter n-grams match ordinary phrases), got {n}.")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--path {path}: no such file.")
    index, counts = decontam.build_index(read_items(path, fmt, fields), n)
    if not counts["ngrams"]:
        raise UserError(
            f"{path}: none of its {counts['items']} items has {n} words (or characters, in scripts "
            "without spaces); nothing to check. Lower --ngram or check --field."
        )
    target = root_of(ws) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    work = publishing.temp_dir_for(target)
    work.mkdir()
    try:
        with (work / decontam.INDEX_FILE).open("wb") as fh:
            np.save(fh, index.astype(np.uint64), allow_pickle=False)
        registration = {
            "name": name,
            "path": str(path),
            "sha256": sha256_file(path),
            "format": fmt,
            "fields": fields,
            "n": n,
            **counts,
            "index_bytes": int(index.nbytes),
            "index_sha256": sha256_file(work / decontam.INDEX_FILE),
            "registered": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "units": "quality-stage words, case-folded; one unit per character in scripts without spaces",
        }
        (work / decontam.REGISTRATION_FILE).write_text(
            json.dumps(registration, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        publishing.swap_into_place(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    decontam.open_index.cache_clear()
    return registration


def _checked_by_run(run_dir: Path) -> set[tuple[str, str, int]]:
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    return {
        (s["name"], s["sha256"], int(s["n"]))
        for s in (manifest.get("config") or {}).get("decontam_sets") or []
    }


def at_merge(
    ws: Workspace, plan: Any, drops: dict[str, str], counts: dict[str, Counter[str]]
) -> dict[str, Any]:
    """Check each included source's kept documents against the sets its run did not check; a match joins
    `drops` (cause `contaminated` in `counts`). Returns the manifest's `decontamination` entry: per set,
    the sources whose run checked it and those checked here, and the documents each removed."""
    sets = sets_of(ws)
    per_set: dict[str, dict[str, Any]] = {
        s.name: {
            "n": s.n,
            "sha256": s.sha256,
            "checked_in_runs": [],
            "checked_at_merge": [],
            "documents_removed_in_runs": 0,
            "documents_removed_at_merge": 0,
        }
        for s in sets
    }
    for inc in plan.included:
        done = _checked_by_run(inc.run_dir)
        todo = [s for s in sets if s.key not in done]
        stats = json.loads((inc.run_dir / "stats.json").read_text(encoding="utf-8"))
        in_run = (stats.get("decontamination") or {}).get("per_set") or {}
        for s in sets:
            if s.key in done:
                per_set[s.name]["checked_in_runs"].append(inc.name)
                per_set[s.name]["documents_removed_in_runs"] += int(
                    (in_run.get(s.name) or {}).get("documents_removed", 0)
                )
            else:
                per_set[s.name]["checked_at_merge"].append(inc.name)
        if not todo:
            continue
        for path in inc.files:
            for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(
                batch_size=1024, columns=["id", "text"], use_threads=False
            ):
                rows = [r for r in batch.to_pylist() if schema.doc_key(inc.name, r["id"]) not in drops]
                for row, hits in zip(
                    rows, decontam.matches_many([r["text"] for r in rows], todo), strict=True
                ):
                    key = schema.doc_key(inc.name, row["id"])
                    if hits:
                        drops[key] = f"{schema.CONTAMINATED}: {decontam.detail(hits)}"
                        counts[inc.name][schema.CONTAMINATED] += 1
                        per_set[min(hits)]["documents_removed_at_merge"] += 1
    return {"sets_checked": sorted(per_set), "per_set": per_set}
