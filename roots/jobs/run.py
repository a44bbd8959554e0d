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
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from roots import __version__
from roots.core import failures, progress, publishing
from roots.core.config import WorkspaceConfig
from roots.core.errors import JobError, UserError
from roots.core.schema import STAGE_ORDER, stage_of
from roots.core.util import library_versions, sha256_file
from roots.core.workspace import Workspace
from roots.core.yamlio import write_json
from roots.dedup.minhash import DedupConfig
from roots.governance import audit, catalogue
from roots.governance.catalogue import Card
from roots.io import outputs, readers, spill, urlrules, web
from roots.stages import quality
from roots.stages.process import ProcessConfig, annotate_names, lang_hint


@dataclass
class RunResult:
    source: str
    out_dir: Path
    stats: dict[str, Any]


def reader_spec(card: Card, ws: Workspace | None = None) -> readers.ReaderSpec:
    data = card.data["data"]
    links = {"follow_symlinks": bool(data.get("follow_symlinks", False)),
             "data_root": readers.code_root(card.data_location(ws)) if ws is not None else None}
    if not card.is_code:
        location = card.data_location(ws) if ws is not None else str(data["path"])
        web_settings: dict[str, Any] = {}
        if card.fmt in web.FORMATS:
            web_settings = {"extractor": data.get("extractor") or web.DEFAULT_EXTRACTOR,
                            "url_rules": url_rules(card, ws)[0]}
        return readers.ReaderSpec(
            source=card.name, fmt=card.fmt, text_field=card.field_name("text") or "text",
            id_field=card.field_name("id"), url_field=card.field_name("url"),
            text_unit=data.get("text_unit", "line"), csv_delimiter=data.get("csv_delimiter", ","),
            code_root=(readers.code_root(location) if card.fmt == "html"
                       else readers.input_root(card.fmt, location)),
            **links, **web_settings)
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
        max_file_bytes=max_bytes, **links)


def url_rules(card: Card, ws: Workspace | None) -> tuple[urlrules.UrlRules | None, bool]:
    """The card's `recipe.urls` (allow/deny lists, blocklist files relative to the workspace) and whether
    the URL dedup normalises URLs."""
    base = ws.root if ws is not None else card.path.parent
    return urlrules.from_card(card.recipe.get("urls"), f"{card.path}: field `recipe.urls`", Path(base))


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
    signal_settings: dict[str, Any] = {}
    if not card.is_code:
        signal_settings = signal_config(ws, settings, card)
    return ProcessConfig(
        **signal_settings,
        source=card.name, declared=declared, recipe=tuple(recipe.get("operations") or ()),
        skip=skip, thresholds=thresholds, calibrated=tuple(sorted(settings.calibration)),
        langid_model=recipe.get("langid_model") or settings.langid.model,
        langid_routing=settings.langid.routing, max_chars=settings.normalise.max_chars,
        normalise_unicode=settings.normalise.unicode,
        pii_tags=pii_tags(ws, settings, card), pii_rules=pii_rules(card), lm_dir=str(lm_dir),
        # web readers check the URL rules themselves, before extraction
        url_rules=None if card.fmt in web.FORMATS else url_rules(card, ws)[0],
        langid_hint=bool(recipe.get("langid_hint", False)), **code_settings)


def signal_config(ws: Workspace, settings: WorkspaceConfig, card: Card) -> dict[str, Any]:
    """The quality classifiers, evaluation sets and annotate-only stages of a text source's run.

    `classifiers` of roots.yaml, overlaid per classifier by the card's `recipe.classifiers`; the card's
    `recipe.annotate_only` replaces roots.yaml's `annotate_only`; every evaluation set registered in the
    workspace (`roots decontam add`) is checked."""
    from roots.jobs import decontam as decontam_job
    from roots.stages import classifier as clf

    chosen = {**(settings.classifiers or {}), **(card.recipe.get("classifiers") or {})}
    where = f"{card.path}: `recipe.classifiers` / {ws.config_path}"
    specs = clf.resolve_specs(chosen, ws.path_setting("models_dir") / "classifiers", where)
    names, at = card.recipe.get("annotate_only"), f"{card.path}: field `recipe.annotate_only`"
    if names is None:
        names, at = settings.annotate_only, f"{ws.config_path}: `annotate_only`"
    return {"classifiers": specs, "decontam_sets": decontam_job.sets_of(ws),
            "annotate_only": annotate_names(names, specs, at)}


def _config_hash(spec: readers.ReaderSpec, cfg: ProcessConfig, extra: dict[str, Any]) -> str:
    """Hash of the configuration a run depends on as a whole. Per-language settings are left out
    (thresholds, perplexity models), and for a code source the language-ID model too: `settings_changed`
    compares those for the languages the source has, so a change elsewhere does not make it stale."""
    process = _jsonable(asdict(cfg))
    process.pop("thresholds", None)
    models = {k: v for k, v in (extra.get("models") or {}).items()
              if k != "lm_models" and not (cfg.code and k in ("langid_model", "langid_routing"))}
    blob = json.dumps({"reader": asdict(spec), "process": process, "extra": {**extra, "models": models},
                       "version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def source_languages(p: RunPlan, final: Path | None = None) -> set[str]:
    """The languages whose settings can change a text source's result: its declared languages and every
    language its last run found (for `multi` sources, what language ID said)."""
    langs = {lang for lang in p.cfg.declared if lang != "multi"}
    try:
        stats = json.loads(((final or p.final) / "stats.json").read_text(encoding="utf-8"))
        langs |= {str(lang) for lang in stats.get("languages") or {}}
    except (OSError, ValueError):
        pass
    return langs


def settings_changed(p: RunPlan, manifest: dict[str, Any]) -> list[str]:
    """What changed since `manifest`'s run among the settings that reach this source: thresholds of the
    languages it has (and `default`), their perplexity models; for a code source, the code thresholds only
    (a text language's thresholds or models never reach it)."""
    from roots.stages import code

    old = (manifest.get("config") or {}).get("thresholds") or {}
    new = _jsonable(dict(p.cfg.thresholds))
    if p.cfg.code:
        def relevant(key: str) -> bool:
            return key == code.UNKNOWN_LANG or key.startswith(code.LANG_PREFIX)
        langs: set[str] = set()
    else:
        langs = source_languages(p)

        def relevant(key: str) -> bool:
            return key == "default" or key in langs
    changed = [f"thresholds of {key}" for key in sorted(set(old) | set(new))
               if relevant(key) and old.get(key) != new.get(key)]
    old_lms = (manifest.get("versions") or {}).get("lm_models") or {}
    new_lms = p.versions.get("lm_models") or {}
    changed += [f"perplexity model of {lang}" for lang in sorted(langs)
                if old_lms.get(lang) != new_lms.get(lang)]
    return changed


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def fingerprint(files: list[tuple[str, int]], digests: dict[str, str] | None = None,
                not_read: frozenset[str] = frozenset()) -> str:
    """Content hash of local inputs; remote inputs are fingerprinted by path and size. `digests`, when
    given, receives each local file's own SHA-256 (from the same read), which the run checks its input
    against at the end (`verify_inputs`). Files in `not_read` (symlinks the run does not follow) count by
    their link target, never by the content they lead to."""
    h = hashlib.sha256()
    for path, size in files:
        h.update(f"{path}\0{size}\0".encode())
        if path in not_read:
            h.update(f"link\0{os.readlink(path) if os.path.islink(path) else ''}\0".encode())
        elif os.path.exists(path):
            mine = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(chunk)
                    mine.update(chunk)
            if digests is not None:
                digests[path] = mine.hexdigest()
    return h.hexdigest()


def quarantine_dangling(p: RunPlan, out_dir: Path) -> None:
    """One quarantine entry (and one counted input record) per dangling symlink the pattern matches,
    written as the readers write theirs, so that the run's accounting names every matched path."""
    for path in p.dangling:
        fragments = outputs.FragmentWriter(str(out_dir), outputs.file_id(path), p.shards)
        why = readers.link_problem(p.spec, path) or "dangling symlink"
        fragments.add("quarantine", readers.quarantine(p.spec, path, 0, b"", why))
        fragments.close()
        outputs.write_input_count(str(out_dir), f"dangling-{outputs.file_id(path)}", [path], 1, 0, {})


def verify_inputs(p: RunPlan, entries: list[dict[str, Any]]) -> None:
    """Fail the run if what the readers read is not what was fingerprinted: each file's size when its
    reader opened it, and each file's size and SHA-256 now, must equal the plan's. A file rewritten during
    the run (a download still being written, a sync) would otherwise be published as finished from a
    partial read under the old fingerprint, and `run --all` would then skip it as up to date."""
    planned = dict(p.files)
    listed = [(path, (entry.get("file_bytes") or {}).get(path)) for entry in entries
              for path in entry["paths"] if path not in p.dangling]
    for path, seen in listed:
        if path not in planned:
            raise JobError(f"input {path} was read but was not among the files fingerprinted when the run "
                           f"started; outputs not published. Run {p.card.name} again once its input folder "
                           "is stable.")
        if seen is not None and seen != planned[path]:
            raise JobError(f"input {path} changed during the run: {planned[path]:,} bytes when "
                           f"fingerprinted, {seen:,} bytes when read; outputs not published. Run "
                           f"{p.card.name} again once the file is complete.")
    for path, size in p.files:
        if path not in p.digests:
            continue  # a remote file: fingerprinted by path and size only
        try:
            now_size = os.path.getsize(path)
            now_digest = sha256_file(Path(path)) if now_size == size else None
        except OSError as exc:
            raise JobError(f"input {path} cannot be read again to verify it ({exc.strerror}); outputs not "
                           "published") from None
        if now_size != size or now_digest != p.digests[path]:
            raise JobError(f"input {path} changed during the run (fingerprinted {size:,} bytes, SHA-256 "
                           f"{p.digests[path][:12]}; now {now_size:,} bytes"
                           + (f", SHA-256 {now_digest[:12]}" if now_digest else "")
                           + f"); outputs not published. Run {p.card.name} again once the file is stable.")


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
    if cfg.classifiers:  # a retrained classifier of the same name changes the run's configuration hash
        versions["classifiers"] = {c.name: sha256_file(Path(c.model_dir) / "model.bin")
                                   for c in cfg.classifiers}
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
                  seconds: float, web_source: bool = False) -> dict[str, Any]:
    cols = (["lang", "lang_backend", "n_bytes", "ppl_status", "lang_predicted", "lang_score", "signals"]
            + (["license", "origin"] if cfg.code else []) + (["meta"] if web_source else []))
    scores = LangidScores(cfg)
    licenses = LicenseWarnings(cfg.license) if cfg.code else None
    signals = SignalCounts(cfg)
    hints = LangHintStats()  # web pages' `lang` attributes, compared with language ID's predictions
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
        scores.add(row, None)
        bytes_out += len(row["text"].encode("utf-8", "surrogatepass"))
        if licenses is not None:
            licenses.add(row)
        if row["pii"]:
            pii.update(json.loads(row["pii"]))
        signals.add(row, None)
        if web_source:
            hints.add(row)
    for row in outputs.iter_kind(out_dir, "rejected", [*cols, "reason"]):
        n_rej += 1
        entry = per_lang[row["lang"]]
        entry["rejected"] += 1
        if licenses is not None:
            licenses.add(row)
        entry["reasons"][row["reason"]] += 1
        entry["langid_backend"][row["lang_backend"] or "none"] += 1
        entry["perplexity"][row["ppl_status"] or "not_reached"] += 1
        scores.add(row, row["reason"])
        reasons[row["reason"]] += 1
        signals.add(row, row["reason"])
        if web_source:
            hints.add(row)
    quarantined = sum(1 for _ in outputs.iter_kind(out_dir, "quarantine", ["line"]))
    n_in = counters.get("input_records", n_kept + n_rej + quarantined)
    langs = {lang: {"kept": v["kept"], "rejected": v["rejected"],
                    "reasons": dict(sorted(v["reasons"].items())),
                    "langid_backend": dict(sorted(v["langid_backend"].items())),
                    "perplexity": dict(sorted(v["perplexity"].items()))}
             for lang, v in sorted(per_lang.items())}
    no_lm = sorted(lang for lang, v in langs.items() if v["perplexity"].get("no_model"))
    extra = {"lang_hint": hints.summary()} if web_source else {}
    return {
        "source": cfg.source,
        "documents": {"input": n_in, "kept": n_kept, "rejected": n_rej, "quarantined": quarantined},
        "reasons": dict(sorted(reasons.items())),
        "stages": stage_counts(n_kept + n_rej, reasons),
        "pii_replacements": dict(sorted(pii.items())),
        **signals.stats(),
        "languages": langs,
        "threshold_origin": {lang: quality.threshold_origin(lang, cfg.calibrated) for lang in langs},
        "langid": scores.summary(),
        "notes": {
            "langid": scores.notes(),
            "langid_not_filtered": [f"{lang}: declared language unknown to every language-ID backend; "
                                    "kept as declared, not filtered by language ID"
                                    for lang in unknown_langs],
            "perplexity_not_filtered": [f"{lang}: no perplexity model in {cfg.lm_dir}; not filtered by "
                                        "perplexity (train one with `roots lm train`)" for lang in no_lm],
            **({"license_differs_from_card": licenses.notes()} if licenses is not None else {}),
        },
        **({"code_licenses": licenses.summary()} if licenses is not None else {}),
        "bytes": {"in": counters.get("bytes_in"), "out": bytes_out},
        "timings": {"wall_seconds": round(seconds, 3),
                    "documents_per_second": round(n_in / seconds, 1) if seconds > 0 else None,
                    "stage_cpu_seconds": {k: round(v, 3) for k, v in _stage_seconds(counters).items()}},
        **extra,
    }


class LangidScores:
    """What the run's own language-ID scores say about `lid_min`, per declared language (streamed).

    For each declared language: how many documents were predicted in it, how many of those scored below
    its `lid_min` (kept anyway unless `lid_strict_declared`), how many `language` rejections predicted
    it, and a suggested `lid_min`: the score that 95% of the documents predicted in the declared
    language reach (a histogram of 1000 bins, so memory does not grow with the source). The card declares
    the language, so those documents are taken to be in it; the suggestion is what a strict threshold
    would have to be for this source to keep 95% of them.
    """

    BINS = 1000
    KEEP = 0.95

    def __init__(self, cfg: ProcessConfig) -> None:
        self.declared = tuple(cfg.declared)
        self.lid_min = {lang: quality.resolve_params(lang, cfg.thresholds).lid_min for lang in self.declared}
        self.hist = {lang: [0] * (self.BINS + 1) for lang in self.declared}
        self.low: Counter[str] = Counter()
        self.language_rejections = 0
        self.rejected_predicted_declared: Counter[str] = Counter()

    def add(self, row: Mapping[str, Any], reason: str | None) -> None:
        lang, score = row.get("lang_predicted"), row.get("lang_score")
        if reason == "language":
            self.language_rejections += 1
            if lang in self.hist:
                self.rejected_predicted_declared[lang] += 1
        if lang not in self.hist or score is None:
            return
        self.hist[lang][min(self.BINS, max(0, int(float(score) * self.BINS)))] += 1
        if float(score) < self.lid_min[lang]:
            self.low[lang] += 1

    def suggested(self, lang: str) -> float | None:
        counts = self.hist[lang]
        total = sum(counts)
        if not total:
            return None
        allowed, seen = total * (1 - self.KEEP), 0
        for i, n in enumerate(counts):
            if seen + n > allowed:
                return i / self.BINS
            seen += n
        return 1.0

    def summary(self) -> dict[str, Any]:
        return {lang: {"predicted": sum(self.hist[lang]), "lid_min": self.lid_min[lang],
                       "below_lid_min": self.low[lang],
                       "language_rejections_predicting_it": self.rejected_predicted_declared[lang],
                       "suggested_lid_min": self.suggested(lang)}
                for lang in self.declared}

    def notes(self) -> list[str]:
        out = []
        for lang in self.declared:
            suggested = self.suggested(lang)
            if self.low[lang] and suggested is not None:
                out.append(f"{lang}: {self.low[lang]} of {sum(self.hist[lang])} documents predicted {lang} "
                           f"scored below lid_min {self.lid_min[lang]}; 95% of them score at least "
                           f"{suggested:.3f} (a lid_min for this source if you set lid_strict_declared)")
        predicted_declared = sum(self.rejected_predicted_declared.values())
        if self.language_rejections and predicted_declared * 2 > self.language_rejections:
            out.append(f"warning: {predicted_declared} of {self.language_rejections} `language` rejections "
                       f"predicted the declared language ({', '.join(self.declared)}) with a low score; "
                       "language ID recognised them. Set lid_strict_declared: false, or lower lid_min "
                       "to the suggested value above.")
        return out


class LicenseWarnings:
    """Code files whose own licence statement (SPDX line, licence header or per-file field) is not the
    card's: a warning, not a rejection (the licence policy decides what is cleared). Counted in stats.json
    and listed in the report, so an operator can see when a card's licence is wrong for part of a source."""

    SHOWN = 50

    def __init__(self, card_license: str) -> None:
        self.card = card_license
        self.stated: Counter[str] = Counter()
        self.differs: Counter[str] = Counter()
        self.examples: list[str] = []

    def add(self, row: dict[str, Any]) -> None:
        from roots.stages import code

        lic = row.get("license")
        if not lic:
            return
        self.stated[lic] += 1
        if code.differs_from_card(lic, self.card):
            self.differs[lic] += 1
            if len(self.examples) < self.SHOWN:
                self.examples.append(f"{row.get('origin') or row.get('id')}: states {lic}, the card says "
                                     f"{self.card}")

    def notes(self) -> list[str]:
        more = sum(self.differs.values()) - len(self.examples)
        return sorted(self.examples) + ([f"... and {more} more files"] if more > 0 else [])

    def summary(self) -> dict[str, Any]:
        return {"card": self.card, "differs_from_card": sum(self.differs.values()),
                "files_by_license": dict(sorted(self.stated.items())),
                "differing_by_license": dict(sorted(self.differs.items()))}


class SignalCounts:
    """Per quality classifier (documents scored, rejected, the cut applied) and per evaluation set
    (documents overlapping it, documents removed for it), counted from the stored `signals` column."""

    def __init__(self, cfg: ProcessConfig) -> None:
        self.cfg = cfg
        self.scored: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.overlap: Counter[str] = Counter()
        self.removed: Counter[str] = Counter()

    def add(self, row: dict[str, Any], reason: str | None) -> None:
        raw = row.get("signals")
        if not raw:
            return
        data = json.loads(raw)
        for spec in self.cfg.classifiers:
            if spec.column in data:
                self.scored[spec.name] += 1
                self.rejected[spec.name] += reason == spec.reason
        hits = data.get("contamination") or {}
        self.overlap.update(hits.keys())
        if reason == "contaminated" and hits:
            self.removed[min(hits)] += 1  # the set the detail names

    def stats(self) -> dict[str, Any]:
        from roots.stages import classifier as clf
        from roots.stages import decontam

        annotate = self.cfg.annotate_only
        out: dict[str, Any] = {}
        if self.cfg.classifiers:
            out["classifiers"] = {}
            for spec in self.cfg.classifiers:
                meta = clf.read_meta(spec.model_dir) if Path(spec.model_dir, clf.META_FILE).exists() else None
                cut, how = clf.cut_of(spec, meta)
                out["classifiers"][spec.name] = {
                    "lang": spec.lang, "cut": cut, "cut_kind": how, "annotate_only": spec.reason in annotate,
                    "scored": self.scored[spec.name], "rejected": self.rejected[spec.name],
                    "heldout": (meta or {}).get("heldout")}
        if self.cfg.decontam_sets:
            out["decontamination"] = {
                "sets": decontam.as_config(self.cfg.decontam_sets),
                "annotate_only": "contaminated" in annotate,
                "per_set": {s.name: {"documents_overlapping": self.overlap[s.name],
                                     "documents_removed": self.removed[s.name]}
                            for s in self.cfg.decontam_sets}}
        return out
class LangHintStats:
    """How often a page's HTML `lang` attribute agrees with language ID (ROOTS's pseudo-crawl kept the
    attribute; a site that labels every page `en` shows up here as disagreement)."""

    def __init__(self) -> None:
        self.with_hint = self.agree = self.disagree = self.decided_by_hint = 0
        self.pairs: Counter[str] = Counter()

    def add(self, row: dict[str, Any]) -> None:
        hint = lang_hint(row.get("meta") or "")
        if hint is None or not row.get("lang_predicted"):
            return
        self.with_hint += 1
        if row.get("lang_backend") == "html_lang":
            self.decided_by_hint += 1
        if hint == row["lang_predicted"]:
            self.agree += 1
        else:
            self.disagree += 1
            self.pairs[f"{hint}->{row['lang_predicted']}"] += 1

    def summary(self) -> dict[str, Any]:
        return {"documents_with_hint": self.with_hint, "agree": self.agree, "disagree": self.disagree,
                "decided_by_hint": self.decided_by_hint,
                "disagreements": dict(self.pairs.most_common(20))}


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
    digests: dict[str, str] = field(default_factory=dict)  # local file -> SHA-256 when fingerprinted
    dangling: list[str] = field(default_factory=list)  # symlinks the pattern matches, to nothing


def default_threshold_warnings(card: Card, cfg: ProcessConfig) -> list[str]:
    """A warning per declared language that runs on the `default` thresholds: neither ROOTS's row nor a
    calibration, and no override in the card or roots.yaml. Its documents are judged with thresholds
    tuned for no language in particular."""
    out = []
    for lang in cfg.declared:
        if lang == "code" or cfg.code:
            continue
        if quality.threshold_origin(lang, cfg.calibrated) == "default" and not cfg.thresholds.get(lang):
            out.append(f"{card.name}: declared language {lang} runs on the `default` thresholds (not one of "
                       f"ROOTS's 13, not calibrated); calibrate them from clean {lang} text with "
                       f"`roots thresholds calibrate --lang {lang} --corpus FILE`")
    return out


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
    files = visible(source_pipeline.match_files(pattern), pattern)
    if not files:
        raise UserError(f"{card.path}: field `data.path`: no files match {pattern!r}. Check the path "
                        f"(relative paths are inside the workspace {ws.root}).")
    if shards <= 0:  # about 64 MB of input per output shard: the driver consolidates one shard at a time
        shards = max(2, sum(size for _, size in files) // 64_000_000 + 1)
    versions = model_versions(cfg)
    final = Path(out) if out else ws.path_setting("runs_dir") / name
    dedup_cfg = dedup_config(ws, card)
    extra = {"shards": shards, "models": versions, "dedup": asdict(dedup_cfg) if dedup_cfg else None}
    digests: dict[str, str] = {}
    not_read = frozenset(path for path, _ in files if readers.link_problem(spec, path))
    dangling = source_pipeline.dangling_links(pattern)
    # dangling links take part in the fingerprint: one appearing or going changes what the run counts
    listed = sorted([*files, *((path, 0) for path in dangling)])
    return RunPlan(card, spec, cfg, pattern, files, fingerprint(listed, digests, not_read | set(dangling)),
                   _config_hash(spec, cfg, extra), shards, batch_size, final, versions, dedup_cfg, digests,
                   dangling)


def visible(files: list[tuple[str, int]], pattern: str) -> list[tuple[str, int]]:
    """The files of a directory location without hidden ones (a name starting with "." at any level below
    the directory: `.git/`, `.DS_Store`, editors' and roots's own temporary files), which are not part of
    a corpus by convention. A glob or a file named explicitly is taken as written."""
    if not pattern.endswith("/**"):
        return files
    root = pattern[:-2]
    return [(path, size) for path, size in files
            if not any(part.startswith(".") for part in readers.relative_path(root, path).split("/"))]


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
    if url_rules(card, ws)[1]:
        card_values = {**card_values, "url_normalise": True}
    try:
        return DedupConfig(**{**workspace_values, **card_values})
    except (TypeError, ValueError) as exc:
        raise UserError(f"{card.path}: field `recipe.dedup` (over {ws.config_path} `dedup`): {exc}") from None


def finished_manifest(final: Path) -> dict[str, Any] | None:
    """The manifest of the finished run in `final`, or None; an interrupted swap of `final` is repaired
    first (`publishing.recover`), so a finished run never looks missing."""
    publishing.recover(final)
    path = final / "manifest.json"
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    return manifest if manifest.get("finished") else None


def up_to_date(p: RunPlan) -> bool:
    """A finished run with the same input fingerprint, configuration hash and per-language settings (of the
    languages the source has) need not run again."""
    manifest = finished_manifest(p.final)
    return bool(manifest and manifest.get("input", {}).get("fingerprint") == p.fingerprint
                and same_configuration(p, manifest))


def same_configuration(p: RunPlan, manifest: dict[str, Any]) -> bool:
    return manifest.get("config_hash") == p.config_hash and not settings_changed(p, manifest)


def in_flight(final: Path) -> list[tuple[Path, int | None, bool]]:
    """Temporary run directories next to `final`: (path, pid, whether that process is alive)."""
    found = []
    for tmp in sorted(final.parent.glob(f".{final.name}.tmp-*")):
        try:
            pid = int((tmp / ".pid").read_text().strip())
        except (OSError, ValueError):
            pid = None
        found.append((tmp, pid, pid is not None and publishing.pid_alive(pid)))
    return found


def run_source(ws: Workspace, name: str, out: Path | None = None, beam_args: list[str] | None = None,
               num_shards: int | None = None) -> RunResult:
    return execute(plan(ws, name, out, num_shards), ws, beam_args)


def execute(p: RunPlan, ws: Workspace, beam_args: list[str] | None = None) -> RunResult:
    from roots.stages.routing import load_router

    name, cfg = p.card.name, p.cfg
    outputs.bounded_arrow_memory()
    router = load_router(cfg.langid_model, cfg.langid_routing) if "langid" not in cfg.skip else None
    unknown = [lang for lang in cfg.declared if router is not None and not router.covers(lang)]
    final = p.final
    started = dt.datetime.now(dt.UTC)
    log = log_path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise failures.os_failure(exc, f"run {name}", final.parent) or exc from None
    publishing.recover(final)  # before the clean-up below, which would take a complete `.tmp` for debris
    for tmp_dir, pid, alive in in_flight(final):
        if alive and pid != os.getpid():
            raise UserError(f"source {name} is already being run by process {pid} ({tmp_dir}); "
                            "wait for it or stop it first.")
        shutil.rmtree(tmp_dir, ignore_errors=True)  # left by a killed run; it never looked finished
    with failures.capture_log(log):
        return _execute(p, ws, beam_args, started, log, unknown)


def log_path(final: Path) -> Path:
    """The log of the latest run of `final` (Beam's records, tracebacks included), beside the run."""
    return final.parent / f".{final.name}.log"


def _execute(p: RunPlan, ws: Workspace, beam_args: list[str] | None, started: dt.datetime, log: Path,
             unknown: list[str]) -> RunResult:
    from pipelines import source_pipeline

    name, cfg, final = p.card.name, p.cfg, p.final
    tmp = publishing.temp_dir_for(final)
    try:
        tmp.mkdir()
        (tmp / ".pid").write_text(str(os.getpid()))
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        failure = failures.os_failure(exc, f"run {name}", final.parent, log)
        record_failure(final, started, failure or exc, log)
        raise failure or exc from None
    t0 = time.perf_counter()
    card = p.card
    manifest: dict[str, Any] = {
        "id": uuid.uuid4().hex,  # this run's identity: a merge pins it (roots.jobs.merge.pin)
        "source": name,
        "card": str(card.path.relative_to(ws.root)) if card.path.is_relative_to(ws.root) else str(card.path),
        "card_sha256": sha256_file(card.path),
        "input": {"pattern": p.pattern,
                  "files": [{"path": f, "bytes": s, **({"sha256": p.digests[f]} if f in p.digests else {})}
                            for f, s in p.files],
                  "fingerprint": p.fingerprint},
        "config": _jsonable(asdict(cfg)),
        "config_hash": p.config_hash,
        "reader": asdict(p.spec),
        "shards": p.shards,
        "versions": p.versions,
        "dedup": asdict(p.dedup) if p.dedup else None,
        "beam_args": beam_args or [],
        "started": started.isoformat(timespec="seconds"),
        "audit_head": audit.head(ws),  # `governance verify` checks the trail still contains it
    }
    shown = progress.Progress(f"run {name}")
    try:
        base = incremental_base(p)
        files, previous, buckets = p.files, None, None
        if p.dedup is not None:
            buckets = spill.bucket_count(sum(size for _, size in p.files))
        if base is not None:
            files, buckets = base.new_files, base.key_buckets
            previous = base.link_into(tmp, p.dedup is not None)
            manifest["incremental"] = {"of_run_finished": base.manifest.get("finished"),
                                       "files_read": len(files), "files_from_before": len(base.old_files)}
        manifest["key_buckets"] = buckets
        with shown.watch(run_snapshot(tmp, p, files, len(previous or ()))):
            counters = source_pipeline.run_pipeline(p.pattern, p.spec, cfg, str(tmp), p.shards, p.batch_size,
                                                    beam_args or [], p.dedup, files=files, previous=previous,
                                                    key_buckets=buckets)
            shown.phase("writing shards")
            quarantine_dangling(p, tmp)
            if p.dedup is not None:
                keep_state(tmp)
            outputs.consolidate(tmp, p.shards)
            shown.phase("accounting")
            entries = outputs.read_input_records(tmp) or []
            read = sum(e["files"] for e in entries) - len(p.dangling)
            if read != len(files):
                raise JobError(f"the pipeline read {read} of {len(files)} input files of {name}; outputs not "
                               "published")
            shown.phase("verifying the input")
            verify_inputs(p, entries)
            read_records = sum(e["records"] for e in entries)
            records, size = read_records, sum(e["bytes"] for e in entries)
            if base is not None:
                records += base.stats["documents"]["input"]
                size += base.stats["bytes"]["in"] or 0
            counters = {**counters, "input_records": records, "bytes_in": size}
            outputs.ensure_dirs(tmp)
            stats = compute_stats(tmp, counters, cfg, unknown, time.perf_counter() - t0,
                                  web_source=p.card.fmt in web.FORMATS)
            if base is not None:  # the rate of what this run read, not of the documents it carried over
                timings = stats["timings"]
                timings["documents_read"] = read_records
                seconds = timings["wall_seconds"]
                timings["documents_per_second"] = round(read_records / seconds, 1) if seconds else None
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
        shutil.rmtree(tmp / progress.REPORTS, ignore_errors=True)
    except BaseException as exc:
        shown.close("failed")
        shutil.rmtree(tmp, ignore_errors=True)
        failure = (None if isinstance(exc, (UserError, JobError, KeyboardInterrupt))
                   else failures.os_failure(exc, f"run {name} (input {p.pattern})", final.parent, log))
        record_failure(final, started, failure or exc, log)
        if failure is not None:
            raise failure from exc  # the cause shows with --debug only
        raise
    try:
        publish_run(ws, tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shown.close(f"done: {docs['input']:,} documents, kept {docs['kept']:,}, rejected {docs['rejected']:,}, "
                f"quarantined {docs['quarantined']:,}")
    failure_path(final).unlink(missing_ok=True)
    return RunResult(name, final, stats)


def run_snapshot(tmp: Path, p: RunPlan, files: list[tuple[str, int]],
                 previous: int = 0) -> Callable[[], progress.Snapshot]:
    """Where a source run stands, from the reports its workers leave under `tmp` (any runner whose workers
    share the run directory reports the same way): files read, documents, raw bytes and, with dedup, how
    many units each dedup pass has finished (`previous`: units an incremental run brings from before)."""
    from pipelines.batching import pack_files

    read_units = len(pack_files(files))
    units = read_units + previous
    total = sum(size for _, size in files)

    def snapshot() -> progress.Snapshot:
        reads = progress.read_reports(tmp, "read")
        docs = sum(int(r.get("records", 0)) for r in reads)
        done_bytes = sum(int(r.get("bytes", 0)) for r in reads)
        done_files = sum(int(r.get("files", 0)) for r in reads if r.get("done"))
        finished = sum(1 for r in reads if r.get("done"))
        if p.dedup is not None and finished == read_units:
            for step, label, after in (("finish", "dedup: writing outputs", None),
                                       ("prepare", "dedup: signatures", "dedup: matching duplicates"),
                                       ("lines", "dedup: template lines", "dedup: matching URLs")):
                n = len(progress.read_reports(tmp, step))
                if n:
                    phase = after if n == units and after else label
                    return progress.Snapshot(phase, docs=docs, units=n, units_total=units, unit_name="units")
            first = ("dedup: matching URLs" if p.dedup.url else "dedup: template lines" if p.dedup.template
                     else "dedup: signatures")
            return progress.Snapshot(first, docs=docs)
        return progress.Snapshot("reading and filtering", docs=docs, bytes=done_bytes, bytes_total=total,
                                 units=done_files, units_total=len(files))

    return snapshot


STATE = "_state"
"""Inside a finished run with dedup: its processed spill files and their URL keys, the documents as the
dedup passes first see them. A later run whose inputs only gained files starts from them instead of
reading and processing every file again. Costs about the size of the source's processed text on disk."""


@dataclass
class IncrementalBase:
    """A finished run that a new run can extend: same configuration, every file it read still there and
    unchanged, and files it did not read."""

    manifest: dict[str, Any]
    stats: dict[str, Any]
    final: Path
    old_files: list[str]
    new_files: list[tuple[str, int]]
    key_buckets: int | None

    def link_into(self, tmp: Path, dedup: bool) -> list[str]:
        """Put the earlier run's part of the new run under `tmp` (hard links, copies across filesystems):
        with dedup, its processed spills and URL keys, which every dedup pass reads again, and its
        quarantine; without dedup, its output shards, which stay as they are. Returns the spill paths."""
        for kind in (("quarantine",) if dedup else ("kept", "rejected", "quarantine")):
            for shard in sorted((self.final / kind).glob("part-*.parquet")):
                number, of = shard.stem.split("-")[1], shard.stem.split("-")[3]
                if int(of) == 0:  # the empty placeholder of a kind with no rows
                    continue
                # "-" sorts before every file id, so the earlier rows come first in each shard
                _link(shard, tmp / outputs.FRAGMENTS / kind / f"{int(number):05d}" / "-previous.parquet")
        if not dedup:
            return []
        state = self.final / STATE
        for path in sorted(state.rglob("*.parquet")):
            _link(path, tmp / outputs.WORK / path.relative_to(state))
        return sorted(str(tmp / outputs.WORK / "processed" / path.name)
                      for path in (state / "processed").glob("*.parquet"))


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def incremental_base(p: RunPlan) -> IncrementalBase | None:
    """The finished run this run can extend by reading only the new files, or None (a full run): any file
    it read removed or changed (by content), a setting changed, files without a content hash (remote), or
    the run left no state (`STATE`) to start from."""
    manifest = finished_manifest(p.final)
    if manifest is None or manifest.get("rethreshold_of") or not same_configuration(p, manifest):
        return None
    if p.dangling:  # dangling links are counted by a full run's accounting only
        return None
    old = {f.get("path"): f for f in (manifest.get("input") or {}).get("files") or []}
    now = dict(p.files)
    for path, entry in old.items():
        sha = entry.get("sha256")
        if sha is None or now.get(path) != entry.get("bytes") or p.digests.get(path) != sha:
            return None
    new = [(path, size) for path, size in p.files if path not in old]
    if not new or any(path not in p.digests for path, _ in new):
        return None
    has_state = (p.final / STATE / "processed").is_dir() and manifest.get("key_buckets")
    if p.dedup is not None and not has_state:
        return None
    try:
        stats = json.loads((p.final / "stats.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return IncrementalBase(manifest, stats, p.final, sorted(old), new, manifest.get("key_buckets"))


def keep_state(tmp: Path) -> None:
    """Move the processed spills and their URL keys out of the work directory (which `consolidate` removes)
    into the run's `STATE`, for the next incremental run."""
    work, state = tmp / outputs.WORK, tmp / STATE
    for part in (Path("processed"), Path("keys") / "url"):
        if (work / part).is_dir():
            (state / part).parent.mkdir(parents=True, exist_ok=True)
            os.replace(work / part, state / part)


def failure_path(final: Path) -> Path:
    """Where a failed run of `final` says why it failed (hidden beside the run, never inside it)."""
    return final.parent / f".{final.name}.failed.json"


def record_failure(final: Path, started: dt.datetime, exc: BaseException, log: Path | None = None) -> None:
    """Leave a small record of a failed run, so that `roots status` says "failed" and why instead of
    "not run" (the temporary outputs are gone, and an earlier finished run stays in place). Best effort:
    a full disk must not hide the original error behind a second one."""
    if isinstance(exc, KeyboardInterrupt):
        error = "interrupted"
    elif isinstance(exc, (UserError, JobError)):
        error = str(exc)
    else:
        error = f"{type(exc).__name__}: {exc}"
    try:
        write_json(failure_path(final), {"started": started.isoformat(timespec="seconds"),
                                         "failed": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                                         "error": error[:2000], "pid": os.getpid(),
                                         "log": str(log) if log is not None else None})
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


def publish_run(ws: Workspace, tmp: Path, final: Path) -> None:
    """Swap a finished run into place (`publishing.swap_into_place`), waiting while a merge or a
    publication reads finished runs: they pinned the run in place, which must not change under them."""
    merge_pid = publishing.holder(ws.root / publishing.MERGE_LOCK)
    who = f" (merge process {merge_pid})" if merge_pid is not None and publishing.pid_alive(merge_pid) else ""
    with publishing.flock(ws.root / publishing.RUNS_LOCK, exclusive=True, wait_s=None,
                          waiting=f"  waiting for the merge or publication in progress{who} to finish "
                                  f"before putting {final.name} in place ..."):
        publishing.swap_into_place(tmp, final)
    # the pid stayed in the temporary directory until now: while this run waited for the lock, another run
    # of the source must see it alive (`in_flight`) and not take the finished directory for debris
    (final / ".pid").unlink(missing_ok=True)


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
    for r in results:
        for note in (r.stats.get("notes") or {}).get("langid") or []:
            print(f"{r.source}: {note}", file=sys.stdout, flush=True)
