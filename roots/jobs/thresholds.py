"""`roots thresholds calibrate`: per-language thresholds from clean reference text, written to roots.yaml.

The statistics and the choice of each threshold are `roots.stages.calibrate`'s; this job reads the
corpus, hashes it, and writes the thresholds under `thresholds.<lang>` and their provenance (corpus hash,
share kept, percentile of each bound, date) under `calibration.<lang>` of the workspace's roots.yaml, in
one atomic replacement: a run sees either the old configuration or the complete new one. Other settings
and other languages' overrides are kept; YAML comments in roots.yaml are not (the file is re-serialised).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from roots import __version__
from roots.core.config import WorkspaceConfig
from roots.core.errors import UserError
from roots.core.util import sha256_file
from roots.core.workspace import Workspace
from roots.core.yamlio import dump_yaml, load_yaml
from roots.governance import audit, changes
from roots.jobs.train_lm import _validate_lang
from roots.stages import quality
from roots.stages.calibrate import Calibration, calibrate


def read_lines(corpus: Path) -> list[str]:
    """The corpus's lines (one reference document per line), checked to be UTF-8 text."""
    if not corpus.is_file():
        raise UserError(f"reference corpus {corpus} does not exist or is not a regular file; give a UTF-8 "
                        "text file with one paragraph per line.")
    lines = []
    with corpus.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise UserError(f"{corpus}:{lineno}: not valid UTF-8 ({exc.reason} at byte {exc.start}); "
                                "convert the corpus to UTF-8.") from None
    return lines


def provenance(cal: Calibration, corpus: Path) -> dict[str, Any]:
    """What `calibration.<lang>` records: enough to tell which text and rule produced the thresholds."""
    return {
        "corpus": str(corpus),
        "corpus_sha256": sha256_file(corpus),
        "lines": cal.lines,
        "keep": cal.keep,
        "kept_on_corpus": round(cal.kept / cal.lines, 6),
        "share_per_bound": round(cal.tail, 6),
        # each bound's position in the corpus's distribution: a maximum at this percentile, a minimum at
        # 100 minus it
        "percentile": {b.field: round(100 * (1 - cal.tail if b.side == "max" else cal.tail), 4)
                       for b in cal.bounds},
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "roots_version": __version__,
    }


def calibrate_workspace(ws: Workspace, lang: str, corpus: Path, keep: float = 0.98,
                        write: bool = True, by: str | None = None) -> tuple[Calibration, dict[str, Any]]:
    """Calibrate `lang` from `corpus` and (unless `write` is False) record it in the workspace's roots.yaml.

    roots.yaml is a governed file: the new content is written and its audit entry (`config.calibrate`,
    naming the corpus hash and the share kept) appended as one change, so `governance verify` keeps
    passing and the calibration is on the record like `roots config set`.

    Measurement settings (n-gram lengths, word removals) and the bounds that are not calibrated come from
    `lang`'s thresholds as the workspace resolves them now.
    """
    _validate_lang(lang)
    settings = ws.settings()
    base = quality.resolve_params(lang, settings.thresholds)
    cal = calibrate(read_lines(corpus), lang, keep, base)
    record = provenance(cal, corpus)
    if write:
        with audit.locked(ws):  # read, check, write and record as one step against concurrent changes
            _write(ws, lang, cal, record, corpus, by)
    return cal, record


def _write(ws: Workspace, lang: str, cal: Calibration, record: dict[str, Any], corpus: Path,
           by: str | None) -> None:
    changes.require_unchanged(ws, ws.config_path)
    raw = load_yaml(ws.config_path) if ws.config_path.exists() else {}
    raw = dict(raw or {})
    thresholds = dict(raw.get("thresholds") or {})
    thresholds[lang] = {**(thresholds.get(lang) or {}), **cal.thresholds}
    calibration = dict(raw.get("calibration") or {})
    calibration[lang] = record
    raw["thresholds"], raw["calibration"] = thresholds, calibration
    WorkspaceConfig.from_mapping(raw, str(ws.config_path))  # the file a run will read must load
    quality.resolve_params(lang, thresholds)
    reason = f"thresholds calibrated from {corpus.name} (sha256 {record['corpus_sha256'][:12]})"
    changes.write_governed(ws, ws.config_path, dump_yaml(raw), "config.calibrate", f"thresholds.{lang}",
                           {"lang": lang, "corpus_sha256": record["corpus_sha256"], "keep": cal.keep,
                            "reason": reason}, by)
