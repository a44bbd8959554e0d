"""The source catalogue: one YAML card per source in `sources/<name>.yaml`.

Cards follow the BigScience catalogue's fields. Validation is schema-driven (JSON Schema, with a
`x-fix` hint next to each rule) so that every problem in every card is reported at once, with the
file, the field and what to do, instead of stopping at the first.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema

from roots.core.errors import UserError
from roots.core.workspace import Workspace
from roots.core.yamlio import load_yaml

FORMATS = ("jsonl", "parquet", "text", "csv", "hf")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
"""A source name, matched whole (`fullmatch`): the schema's pattern ends in `$`, which Python's `re`
lets match before a trailing newline, so `open\\n` used to pass it."""

# Characters that render like an ASCII letter or digit (Unicode's confusables table, the Cyrillic,
# Greek and Armenian letters that matter for Latin names, plus digit/letter twins): two names with the
# same skeleton look the same in a listing.
_CONFUSABLE = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "һ": "h", "ԛ": "q",
    "ԝ": "w", "ո": "n", "ս": "u", "օ": "o", "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v",
    "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ı": "i", "ɑ": "a", "ɡ": "g",
    "0": "o", "1": "l", "|": "l", "_": "-",
})


def skeleton(name: str) -> str:
    """What a name looks like: compatibility-folded, case-folded, accents dropped, look-alike letters
    mapped to their ASCII twin (`рrop` with a Cyrillic р and `prop` share one skeleton)."""
    folded = unicodedata.normalize("NFKD", name).casefold()
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return plain.translate(_CONFUSABLE).replace("rn", "m")


def name_problems(name: str) -> list[str]:
    """What is wrong with a source name as a name (not as a card): control characters, surrounding
    whitespace, a trailing dot, characters outside the pattern. Empty: usable."""
    problems = []
    if any(unicodedata.category(c).startswith(("C", "Z")) and c != " " for c in name):
        problems.append("contains control or invisible characters (a line break, tab, zero-width space...)")
    if name != name.strip():
        problems.append("has leading or trailing whitespace")
    if name.endswith("."):
        problems.append("ends with a dot")
    if ".." in name:
        problems.append("contains '..'")
    if not problems and not NAME_RE.fullmatch(name):
        problems.append("uses characters other than ASCII letters, digits, '_', '.' and '-' (or does not "
                        "start with a letter or digit)")
    return problems


def check_name(name: str, what: str = "source name") -> str:
    """`name` if it is usable as a source name, else a UserError saying why: names become file and
    folder names (`sources/NAME.yaml`, `governance/permissions/NAME/`), so they must stay inside them."""
    problems = name_problems(name) if isinstance(name, str) else ["is not a string"]
    if problems:
        raise UserError(f"{what} {name!r} {'; '.join(problems)}. Use ASCII letters, digits, '_', '.' and "
                        "'-', starting with a letter or digit and not ending with a dot.")
    return name


def lookalikes(name: str, others: list[str]) -> list[str]:
    """The names of `others` that look like `name` without being it (same skeleton)."""
    mine = skeleton(name)
    return [o for o in others if o != name and skeleton(o) == mine]


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(resources.files("roots").joinpath("data/source_card.schema.json").read_text("utf-8"))


@dataclass(frozen=True)
class Problem:
    file: Path
    field: str
    message: str
    fix: str

    def __str__(self) -> str:
        where = f"field `{self.field}`" if self.field else "card"
        return f"{self.file}: {where}: {self.message}. Fix: {self.fix}."


@dataclass
class Card:
    """A validated source card."""

    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def languages(self) -> list[str]:
        return list(self.data["languages"])

    @property
    def is_multi(self) -> bool:
        return "multi" in self.languages

    @property
    def is_code(self) -> bool:
        return self.data.get("kind") == "code" or "code" in self.languages

    @property
    def license(self) -> str:
        return str(self.data["license"])

    @property
    def active(self) -> bool:
        return self.data["status"]["state"] == "active"

    @property
    def killed_reason(self) -> str | None:
        status = self.data["status"]
        return status.get("reason") if status["state"] == "killed" else None

    @property
    def fmt(self) -> str:
        return str(self.data["data"]["format"])

    @property
    def recipe(self) -> dict[str, Any]:
        return dict(self.data.get("recipe") or {})

    def field_name(self, kind: str) -> str | None:
        """Name of the text/id/url field in the input records (text defaults to `text`)."""
        value = self.data["data"].get(f"{kind}_field")
        return value if value is not None else ("text" if kind == "text" else None)

    def data_location(self, ws: Workspace) -> str:
        """The data path as Beam should read it: URIs and absolute paths as given, else workspace-relative."""
        raw = str(self.data["data"]["path"])
        if _is_uri(raw) or Path(raw).is_absolute():
            return raw
        return str(ws.root / raw)


def _is_uri(path: str) -> bool:
    return "://" in path


def _default_fix(error: jsonschema.ValidationError) -> str:
    """The fix for a rule whose schema path carries no `x-fix` hint."""
    if error.validator == "additionalProperties":
        return "remove or rename the unknown field (see `roots source add --help` for the card fields)"
    return "correct the value"


def _field_of(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        return f"{path}.{missing}" if path else missing
    return path


def _nested_fix(schema_: dict[str, Any], error: jsonschema.ValidationError) -> str:
    """Look up `x-fix` along the error's schema path (required errors sit on the parent)."""
    node: Any = schema_
    fix = None
    for part in error.absolute_path:
        props = node.get("properties", {}) if isinstance(node, dict) else {}
        node = props.get(part) if isinstance(part, str) and part in props else (
            node.get("items") if isinstance(node, dict) and "items" in node else {})
        if isinstance(node, dict) and "x-fix" in node:
            fix = node["x-fix"]
    if error.validator == "required" and isinstance(node, dict):
        missing = error.message.split("'")[1] if "'" in error.message else ""
        sub = node.get("properties", {}).get(missing, {})
        if isinstance(sub, dict) and "x-fix" in sub:
            return str(sub["x-fix"])
        return f"add `{missing}:` to the card"
    return str(fix) if fix else _default_fix(error)


def check_card(path: Path, data: Any, ws: Workspace, check_filename: bool = True) -> list[Problem]:
    """All problems with one card's content; an empty list means the card is valid."""
    if not isinstance(data, dict):
        return [Problem(path, "", "the card is not a YAML mapping", "write `key: value` fields at top level")]
    validator = jsonschema.Draft202012Validator(schema())
    problems = [
        Problem(path, _field_of(e), e.message, _nested_fix(schema(), e))
        for e in sorted(validator.iter_errors(data),
                        key=lambda e: (list(map(str, e.absolute_path)), e.message))
    ]
    name = data.get("name")
    if isinstance(name, str):
        problems += [Problem(path, "name", f"name {name!r} {p}",
                             "use ASCII letters, digits, '_', '.' and '-', not ending with a dot")
                     for p in name_problems(name) if "characters other than" not in p]
    if check_filename and isinstance(name, str) and name != path.stem:
        problems.append(Problem(path, "name", f"card name {name!r} differs from its file name {path.stem!r}",
                                f"rename the file to {name}.yaml or set `name: {path.stem}`"))
    lic, text = data.get("license"), data.get("license_text")
    if isinstance(lic, str) and lic.startswith("LicenseRef-") and not text:
        problems.append(Problem(path, "license_text", f"custom licence {lic} has no licence text",
                                "paste the licence terms into `license_text:`"))
    raw_path = (data.get("data") or {}).get("path") if isinstance(data.get("data"), dict) else None
    climbs = isinstance(raw_path, str) and not _is_uri(raw_path) and not Path(raw_path).is_absolute() and (
        ".." in PurePosixPath(raw_path.replace("\\", "/")).parts)
    if climbs:
        problems.append(Problem(path, "data.path", f"relative path {raw_path!r} climbs out of the workspace "
                                "with '..'", "use a path inside the workspace, an absolute path or a URI"))
    return problems


def card_path(ws: Workspace, name: str) -> Path:
    return ws.sources_dir / f"{name}.yaml"


def card_files(ws: Workspace) -> list[Path]:
    return sorted(p for p in ws.sources_dir.glob("*.yaml") if p.is_file()) + sorted(
        p for p in ws.sources_dir.glob("*.yml") if p.is_file())


def validate_all(ws: Workspace) -> tuple[list[Card], list[Problem]]:
    """Validate every card, including cross-card rules (duplicate names)."""
    cards: list[Card] = []
    problems: list[Problem] = []
    seen: dict[str, Path] = {}
    shapes: dict[str, tuple[str, Path]] = {}
    for path in card_files(ws):
        try:
            data = load_yaml(path)
        except UserError as exc:
            problems.append(Problem(path, "", str(exc).split(": ", 1)[-1].rstrip("."), "fix the YAML"))
            continue
        found = check_card(path, data, ws)
        name = data.get("name") if isinstance(data, dict) else None
        if isinstance(name, str):
            key = name.lower()
            shape = skeleton(name)
            if key in seen:
                found.append(Problem(path, "name", f"duplicate source name {name!r} (also in {seen[key]})",
                                     "give each source a unique name"))
            elif shape in shapes:
                other, where = shapes[shape]
                found.append(Problem(path, "name", f"source name {name!r} looks like {other!r} ({where}) "
                                     f"but is spelt with other characters ({name!a})",
                                     "rename it; look-alike names let one source pass for another"))
            else:
                seen[key] = path
                shapes[shape] = (name, path)
        problems.extend(found)
        if not found:
            cards.append(Card(path, data))
    return cards, problems


def load_card(ws: Workspace, name: str) -> Card:
    """Load and validate one card; unknown names and invalid cards are user errors."""
    if name_problems(name):
        check_name(name)
    path = card_path(ws, name)
    if not path.exists() or "/" in name or ".." in name:
        known = ", ".join(p.stem for p in card_files(ws)) or "none registered"
        raise UserError(f"unknown source {name!r} in {ws.sources_dir} (known: {known}). "
                        "Register it with `roots source add`.")
    data = load_yaml(path)
    problems = check_card(path, data, ws)
    if problems:
        raise UserError("invalid source card:\n  " + "\n  ".join(map(str, problems)))
    return Card(path, data)


def load_all(ws: Workspace) -> list[Card]:
    cards, problems = validate_all(ws)
    if problems:
        raise UserError("invalid source cards (run `roots source validate`):\n  " +
                        "\n  ".join(map(str, problems)))
    return cards


def new_card(name: str, *, path: str, fmt: str, license_id: str, custodian: str, language: str = "multi",
             text_field: str | None = None, id_field: str | None = None, url_field: str | None = None,
             description: str | None = None, homepage: str | None = None, custodian_type: str | None = None,
             custodian_contact: str | None = None, pii_likelihood: str | None = None,
             category: str | None = None, license_text: str | None = None, text_unit: str | None = None,
             kind: str | None = None) -> dict[str, Any]:
    """Build a card mapping from `roots source add` options (validated by the caller)."""
    custodian_map: dict[str, Any] = {"name": custodian}
    if custodian_type:
        custodian_map["type"] = custodian_type
    if custodian_contact:
        custodian_map["contact"] = custodian_contact
    data_map: dict[str, Any] = {"path": path, "format": fmt}
    for key, value in (("text_field", text_field), ("id_field", id_field), ("url_field", url_field),
                       ("text_unit", text_unit)):
        if value:
            data_map[key] = value
    card: dict[str, Any] = {"name": name}
    if description:
        card["description"] = description
    if homepage:
        card["homepage"] = homepage
    if kind:
        card["kind"] = kind
    card["languages"] = [s.strip() for s in language.split(",") if s.strip()]
    card["custodian"] = custodian_map
    card["license"] = license_id
    if license_text:
        card["license_text"] = license_text
    if pii_likelihood:
        card["pii_likelihood"] = pii_likelihood
    if category:
        card["category"] = category
    card["data"] = data_map
    card["status"] = {"state": "active"}
    return card
