"""Safe YAML/JSON file I/O shared by the catalogue and governance records.

Every write goes to a temporary file in the same directory and is renamed into place, so a crash
never leaves a half-written card or permission record that later looks valid.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from roots.core import util
from roots.core.errors import UserError


def load_yaml(path: Path) -> Any:
    """Load YAML with the safe loader; syntax errors become a UserError naming file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: file not found.") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start}); "
                        "save it as UTF-8.") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(
            f"{path}:{where}: invalid YAML ({problem}). Fix the syntax at that line "
            "(check indentation, quotes and colons)."
        ) from None


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 text so that readers see either the old file or the complete new one, flushed to disk
    before the rename (`util.write_atomically`)."""
    util.write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), fsync=True)


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


def write_yaml(path: Path, data: Any) -> None:
    atomic_write_text(path, dump_yaml(data))


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False,
                                       default=str) + "\n")
