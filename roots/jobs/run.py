"""Run one source end to end: configuration, Beam pipeline, accounting, atomic publication.

The run writes into a hidden temporary directory next to `runs/<source>/` and renames it into place
only after the pipeline succeeded and the accounting invariant (input == kept + rejected +
quarantined) holds, so a killed or failed run never leaves output that looks finished.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from roots import __version__
from roots.core.config import WorkspaceConfig
from roots.core.errors import JobError, UserError
from roots.core.schema import STAGE_ORDER, stage_of
from roots.core.util import library_versions, sha256_file
from roots.core.workspace import Workspace
from roots.core.yamlio import write_json
from roots.dedup.minhash import DedupConfig
from roots.governance import catalogue
from roots.governance.catalogue import Card
from roots.io import outputs, readers
from roots.stages import quality
from roots.stages.process import ProcessConfig


@dataclass
class RunResult:
    source: str
    out_dir: Path
    stats: dict[str, Any]


def reader_spec(card: Card, ws: Workspace | None = None) -> readers.ReaderSpec:
    data = card.data["data"]
    if not card.is_code:
        return readers.ReaderSpec(
            source=card.name, fmt=card.fmt, text_field=card.field_name("text") or "text",
            id_field=card.field_name("id"), url_field=card.field_name("url"),
            text_unit=data.get("text_unit", "line"), csv_delimiter=data.get("csv_delimiter", ","))
    # Code: a `text` source is a tree of files (one document each); other formats hold `content` + `path`.
    from roots.stages import code

    table = code.load_table(code_languages_path(ws))
    overrides = [v.get("max_bytes") for k, v in (card.recipe.get("thresholds") or {}).items()
                 if (k == code.UNKNOWN_LANG or str(k).startswith(code.LANG_PREFIX)) and isinstance(v, dict)]
    max_bytes = max([table.max_bytes_any(), *(int(b) for b in overrides if b is not None)])
    location = card.data_location(ws) if ws is not None else str(data["path"])
    return readers.ReaderSpec(
        source=card.name, fmt=card.fmt, text_field=data.get("text_field") or "content",
        id_field=card.field_name("id"), url_field=card.field_name("url"),
        csv_delimiter=data.get("csv_delimiter", ","), code=True, path_field=data.get("path_field") or "path",
        license_field=data.get("license_field"), code_root=readers.code_root(location),
        max_file_bytes=max_bytes)


def code_languages_path(ws: Workspace | None) -> str | None:
    """The workspace's own language table (`code: {languages: FILE}` in roots.yaml), or None: the
    bundled one."""
    if ws is None:
        return None
    value = ws.settings().code.languages
    if not value:
        return None
    path = Path(str(value))
    return str(path if path.is_absolute() else ws.root / path)


def cleared_for_training(ws: Workspace) -> frozenset[str]:
    """Lower-cased licence ids the policy clears for training (code files are filtered on them)."""
    from roots.governance import clearance

    policy = clearance.load_policy(ws)
    always = {str(lic).lower() for lic in policy.get("always_require_permission") or ()}
    return frozenset(str(lic).lower() for lic, scopes in (policy.get("clears") or {}).items()
                     if "training" in (scopes or ()) and str(lic).lower() not in always)


def pii_tags(ws: Workspace, settings: WorkspaceConfig, card: Card) -> tuple[str, ...]:
    """The card's `recipe.pii_tags`, else roots.yaml's `pii.tags`, else every tag the scrubber knows."""
    from roots.stages.pii import TAGS

    chosen = card.recipe.get("pii_tags")
    where = f"{card.path}: field `recipe.pii_tags`"
    if chosen is None:
        chosen, where = settings.pii.tags, f"{ws.config_path}: `pii.tags`"
    if chosen is None:
        return TAGS
    tags = (chosen,) if isinstance(chosen, str) else tuple(chosen)
    unknown = [str(t) for t in tags if t not in TAGS]
    if unknown:
        raise UserError(f"{where}: unknown PII tag(s) {', '.join(unknown)}; "
                        f"valid tags are: {', '.join(TAGS)}.")
    return tags


def pii_rules(card: Card) -> tuple[tuple[str, bool], ...]:
    """The card's `recipe.pii_rules` (e.g. `documentation_ips: true`), checked; empty: the defaults."""
    from roots.stages.pii import pii_settings

    return tuple(sorted(pii_settings(card.recipe.get("pii_rules"), f"{card.path}: field `recipe.pii_rules`")
                        .items()))


def process_config(ws: Workspace, card: Card) -> ProcessConfig:
    settings = ws.settings()
    recipe = card.recipe
    thresholds = quality.merge_overrides(settings.thresholds, recipe.get("thresholds"))
    declared = tuple(lang for lang in card.languages if lang not in ("multi",))
    lm_dir = ws.path_setting("models_dir") / "lm"
    skip = frozenset(recipe.get("skip") or ())
    code_settings: dict[str, Any] = {}
    if card.is_code:
        # The natural-language stages do not apply to code (roots/stages/code.py); saying so in `skip` also
        # makes the manifest, the data card and the report show them as skipped.
        skip |= {"langid", "modify", "perplexity"}
        declared = ("code",)
        code_settings = {"code": True, "code_languages": code_languages_path(ws), "license": card.license,
                         "cleared_licenses": cleared_for_training(ws)}
    return ProcessConfig(
        source=card.name, declared=declared, recipe=tuple(recipe.get("operations") or ()),
        skip=skip, thresholds=thresholds,
        langid_model=recipe.get("langid_model") or settings.langid.model,
        langid_routing=settings.langid.routing, max_chars=settings.normalise.max_chars,
        pii_tags=pii_tags(ws, settings, card), pii_rules=pii_rules(card), lm_dir=str(lm_dir), **code_settings)


def _config_hash(spec: readers.ReaderSpec, cfg: ProcessConfig, extra: dict[str, Any]) -> str:
    blob = json.dumps({"reader": asdict(spec), "process": _jsonable(asdict(cfg)), "extra": extra,
                       "version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def fingerprint(files: list[tuple[str, int]]) -> str:
    """Content hash of local inputs; remote inputs are fingerprinted by path and size."""
    h = hashlib.sha256()
    for path, size in files:
        h.update(f"{path}\0{size}\0".encode())
        if os.path.exists(path):
            with open(path, "rb") as fh:
                for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def model_versions(cfg: ProcessConfig) -> dict[str, Any]:
    from roots.stages import langid

    versions: dict[str, Any] = library_versions(
        ("apache_beam", "pyarrow", "fasttext", "gcld3", "kenlm", "sentencepiece", "ftfy", "phonenumbers"))
    path = langid.resolve_model_path(cfg.langid_model)
    versions["langid_model"] = {"path": str(path), "sha256": sha256_file(path)}
    from importlib import resources

    from roots.stages.routing import ROUTING_FILE

    table = (Path(cfg.langid_routing) if cfg.langid_routing
             else Path(str(resources.files("roots") / ROUTING_FILE)))
    versions["langid_routing"] = {"path": str(table),
                                  "sha256": sha256_file(table) if table.exists() else None}
    lm_root = Path(cfg.lm_dir) if cfg.lm_dir else None
    if lm_root and lm_root.is_dir():
        versions["lm_models"] = {d.name: sha256_file(d / "lm.binary") for d in sorted(lm_root.iterdir())
                                 if (d / "lm.binary").exists()}
    return versions


def stage_counts(n_docs: int, reasons: Counter[str]) -> list[dict[str, Any]]:
    """Documents entering and leaving each stage, in pipeline order (quarantine happens before these)."""
    by_stage: Counter[str] = Counter()
    for reason, n in reasons.items():
        by_stage[stage_of(reason)] += n
    rows, live = [], n_docs
    for stage in STAGE_ORDER:
        removed = by_stage.get(stage, 0)
        rows.append({"stage": stage, "in": live, "removed": removed, "out": live - removed})
        live -= removed
    return rows


def compute_stats(out_dir: Path, counters: dict[str, int], cfg: ProcessConfig, unknown_langs: list[str],
                  seconds: float) -> dict[str, Any]:
    cols = ["lang", "lang_backend", "n_bytes", "ppl_status"]
    per_lang: dict[str, dict[str, Any]] = defaultdict(lambda: {"kept": 0, "rejected": 0, "reasons": Counter(),
                                                               "bytes_kept": 0, "langid_backend": Counter(),
                                                               "perplexity": Counter()})
    n_kept = n_rej = bytes_out = 0
    pii: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    # streamed batch by batch: the accounting must not hold a whole source in memory
    for row in outputs.iter_kind(out_dir, "kept", [*cols, "text", "pii"]):
        n_kept += 1
        entry = per_lang[row["lang"]]
        entry["kept"] += 1
        entry["langid_backend"][row["lang_backend"] or "none"] += 1
        entry["perplexity"][row["ppl_status"] or "not_reached"] += 1
        bytes_out += len(row["text"].encode("utf-8", "surrogatepass"))
        if row["pii"]:
            pii.update(json.loads(row["pii"]))
    for row in outputs.iter_kind(out_dir, "rejected", [*cols, "reason"]):
        n_rej += 1
        entry = per_lang[row["lang"]]
        entry["rejected"] += 1
        entry["reasons"][row["reason"]] += 1
        entry["langid_backend"][row["lang_backend"] or "none"] += 1
        entry["perplexity"][row["ppl_status"] or "not_reached"] += 1
        reasons[row["reason"]] += 1
    quarantined = sum(1 for _ in outputs.iter_kind(out_dir, "quarantine", ["line"]))
    n_in = counters.get("input_records", n_kept + n_rej + quarantined)
    langs = {lang: {"kept": v["kept"], "rejected": v["rejected"],
                    "reasons": dict(sorted(v["reasons"].items())),
                    "langid_backend": dict(sorted(v["langid_backend"].items())),
                    "perplexity": dict(sorted(v["perplexity"].items()))}
             for lang, v in sorted(per_lang.items())}
    no_lm = sorted(lang for lang, v in langs.items() if v["perplexity"].get("no_model"))
    return {
        "source": cfg.source,
        "documents": {"input": n_in, "kept": n_kept, "rejected": n_rej, "quarantined": quarantined},
        "reasons": dict(sorted(reasons.items())),
        "stages": stage_counts(n_kept + n_rej, reasons),
        "pii_replacements": dict(sorted(pii.items())),
        "languages": langs,
        "notes": {
            "langid_not_filtered": [f"{lang}: declared language unknown to every language-ID backend; "
                                    "kept as declared, not filtered by language ID"
                                    for lang in unknown_langs],
            "perplexity_not_filtered": [f"{lang}: no perplexity model in {cfg.lm_dir}; not filtered by "
                                        "perplexity (train one with `roots lm train`)" for lang in no_lm],
        },
        "bytes": {"in": counters.get("bytes_in"), "out": bytes_out},
        "timings": {"wall_seconds": round(seconds, 3),
                    "documents_per_second": round(n_in / seconds, 1) if seconds > 0 else None,
                    "stage_cpu_seconds": {k: round(v, 3) for k, v in _stage_seconds(counters).items()}},
    }


def _stage_seconds(counters: dict[str, int]) -> dict[str, float]:
    from pipelines.source_pipeline import stage_seconds

    return stage_seconds(counters)


@dataclass
class RunPlan:
    """Everything decided before a run starts; also what `roots status` compares finished runs against."""

    card: Card
    spec: readers.ReaderSpec
    cfg: ProcessConfig
    pattern: str
    files: list[tuple[str, int]]
    fingerprint: str
    config_hash: str
    shards: int
    batch_size: int
    final: Path
    versions: dict[str, Any]
    dedup: DedupConfig | None


def plan(ws: Workspace, name: str, out: Path | None = None, num_shards: int | None = None) -> RunPlan:
    from pipelines import source_pipeline

    card = catalogue.load_card(ws, name)
    if not card.active:
        raise UserError(f"source {name} is killed ({card.killed_reason}); it is not run. Reactivate it in "
                        f"{card.path} (status.state: active) if that was a mistake.")
    spec = reader_spec(card, ws)
    cfg = process_config(ws, card)
    settings = ws.settings()
    shards = int(num_shards or settings.shards or 0)
    batch_size = settings.langid.batch_size
    pattern = readers.file_pattern(card.fmt, card.data_location(ws), code=card.is_code)
    files = source_pipeline.match_files(pattern)
    if not files:
        raise UserError(f"{card.path}: field `data.path`: no files match {pattern!r}. Check the path "
                        f"(relative paths are inside the workspace {ws.root}).")
    if shards <= 0:  # about 64 MB of input per output shard: the driver consolidates one shard at a time
        shards = max(2, sum(size for _, size in files) // 64_000_000 + 1)
    versions = model_versions(cfg)
    final = Path(out) if out else ws.path_setting("runs_dir") / name
    dedup_cfg = dedup_config(ws, card)
    extra = {"shards": shards, "models": versions, "dedup": asdict(dedup_cfg) if dedup_cfg else None}
    return RunPlan(card, spec, cfg, pattern, files, fingerprint(files), _config_hash(spec, cfg, extra),
                   shards, batch_size, final, versions, dedup_cfg)


def dedup_config(ws: Workspace, card: Card) -> DedupConfig | None:
    """Workspace `dedup:` settings overlaid with the card's `recipe.dedup`; None when the card skips dedup."""
    if "dedup" in (card.recipe.get("skip") or ()):
        return None
    workspace_values, card_values = ws.settings().dedup, card.recipe.get("dedup") or {}
    known = {f.name for f in fields(DedupConfig)}
    for where, values in ((f"{ws.config_path}: section `dedup`", workspace_values),
                          (f"{card.path}: field `recipe.dedup`", card_values)):
        unknown = sorted(str(k) for k in set(values) - known)
        if unknown:
            raise UserError(f"{where}: unknown setting(s) {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(known))}.")
    try:
        return DedupConfig(**{**workspace_values, **card_values})
    except (TypeError, ValueError) as exc:
        raise UserError(f"{card.path}: field `recipe.dedup` (over {ws.config_path} `dedup`): {exc}") from None


def finished_manifest(final: Path) -> dict[str, Any] | None:
    path = final / "manifest.json"
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    return manifest if manifest.get("finished") else None


def up_to_date(p: RunPlan) -> bool:
    """A finished run with the same input fingerprint and configuration hash need not run again."""
    manifest = finished_manifest(p.final)
    return bool(manifest and manifest.get("input", {}).get("fingerprint") == p.fingerprint
                and manifest.get("config_hash") == p.config_hash)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def in_flight(final: Path) -> list[tuple[Path, int | None, bool]]:
    """Temporary run directories next to `final`: (path, pid, whether that process is alive)."""
    found = []
    for tmp in sorted(final.parent.glob(f".{final.name}.tmp-*")):
        try:
            pid = int((tmp / ".pid").read_text().strip())
        except (OSError, ValueError):
            pid = None
        found.append((tmp, pid, pid is not None and _pid_alive(pid)))
    return found


def run_source(ws: Workspace, name: str, out: Path | None = None, beam_args: list[str] | None = None,
               num_shards: int | None = None) -> RunResult:
    return execute(plan(ws, name, out, num_shards), ws, beam_args)


def execute(p: RunPlan, ws: Workspace, beam_args: list[str] | None = None) -> RunResult:
    from pipelines import source_pipeline
    from roots.stages.routing import load_router

    name, cfg = p.card.name, p.cfg
    outputs.bounded_arrow_memory()
    router = load_router(cfg.langid_model, cfg.langid_routing) if "langid" not in cfg.skip else None
    unknown = [lang for lang in cfg.declared if router is not None and not router.covers(lang)]
    final = p.final
    final.parent.mkdir(parents=True, exist_ok=True)
    for tmp_dir, pid, alive in in_flight(final):
        if alive and pid != os.getpid():
            raise UserError(f"source {name} is already being run by process {pid} ({tmp_dir}); "
                            "wait for it or stop it first.")
        shutil.rmtree(tmp_dir, ignore_errors=True)  # left by a killed run; it never looked finished
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    (tmp / ".pid").write_text(str(os.getpid()))
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    card = p.card
    manifest: dict[str, Any] = {
        "source": name,
        "card": str(card.path.relative_to(ws.root)) if card.path.is_relative_to(ws.root) else str(card.path),
        "card_sha256": sha256_file(card.path),
        "input": {"pattern": p.pattern, "files": [{"path": f, "bytes": s} for f, s in p.files],
                  "fingerprint": p.fingerprint},
        "config": _jsonable(asdict(cfg)),
        "config_hash": p.config_hash,
        "reader": asdict(p.spec),
        "shards": p.shards,
        "versions": p.versions,
        "dedup": asdict(p.dedup) if p.dedup else None,
        "beam_args": beam_args or [],
        "started": started.isoformat(timespec="seconds"),
    }
    try:
        counters = source_pipeline.run_pipeline(p.pattern, p.spec, cfg, str(tmp), p.shards, p.batch_size,
                                                beam_args or [], p.dedup)
        outputs.consolidate(tmp, p.shards)
        counted = outputs.read_input_counts(tmp)
        if counted is None or counted[0] != len(p.files):
            raise JobError(f"the pipeline read {0 if counted is None else counted[0]} of {len(p.files)} "
                           f"input files of {name}; outputs not published")
        counters = {**counters, "input_records": counted[1], "bytes_in": counted[2]}
        outputs.ensure_dirs(tmp)
        stats = compute_stats(tmp, counters, cfg, unknown, time.perf_counter() - t0)
        docs = stats["documents"]
        if docs["input"] != docs["kept"] + docs["rejected"] + docs["quarantined"]:
            raise JobError(f"accounting check failed for {name}: input {docs['input']} != "
                           f"kept {docs['kept']} + rejected {docs['rejected']} + "
                           f"quarantined {docs['quarantined']}; outputs not published")
        manifest["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        manifest["documents"] = docs
        write_json(tmp / "stats.json", stats)
        write_json(tmp / "manifest.json", manifest)
        from roots.report import datacard

        datacard.write_data_card(tmp, card.data)
        (tmp / ".pid").unlink()
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        record_failure(final, started, exc)
        raise
    publish(tmp, final)
    failure_path(final).unlink(missing_ok=True)
    return RunResult(name, final, stats)


def failure_path(final: Path) -> Path:
    """Where a failed run of `final` says why it failed (hidden beside the run, never inside it)."""
    return final.parent / f".{final.name}.failed.json"


def record_failure(final: Path, started: dt.datetime, exc: BaseException) -> None:
    """Leave a small record of a failed run, so that `roots status` says "failed" and why instead of
    "not run" (the temporary outputs are gone, and an earlier finished run stays in place). Best effort:
    a full disk must not hide the original error behind a second one."""
    error = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
    try:
        write_json(failure_path(final), {"started": started.isoformat(timespec="seconds"),
                                         "failed": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                                         "error": error[:2000], "pid": os.getpid()})
    except OSError:
        pass


def failure_record(final: Path) -> dict[str, Any] | None:
    """The record of the last failed run of `final` (cleared by the next successful one), if any."""
    path = failure_path(final)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def publish(tmp: Path, final: Path) -> None:
    """Swap the finished temporary directory into place; the old run is removed only afterwards."""
    old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def summary_table(results: list[RunResult]) -> str:
    lines = [f"{'source':<20} {'input':>8} {'kept':>8} {'rejected':>9} {'quarant.':>9}  top reasons"]
    for r in results:
        d = r.stats["documents"]
        top = ", ".join(f"{k}={v}" for k, v in sorted(r.stats["reasons"].items(), key=lambda kv: -kv[1])[:4])
        lines.append(f"{r.source:<20} {d['input']:>8} {d['kept']:>8} {d['rejected']:>9} "
                     f"{d['quarantined']:>9}  {top}")
    return "\n".join(lines)


def print_summary(results: list[RunResult]) -> None:
    print(summary_table(results), file=sys.stdout, flush=True)
