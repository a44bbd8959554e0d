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

MAX_YAML_BYTES = 4 << 20
"""The largest YAML file roots reads (cards, records, policy, roots.yaml are kilobytes): a bigger one is
refused before parsing, since the pure-Python parser would take seconds per megabyte."""
MAX_YAML_NODES = 100_000
"""The most nodes a YAML document may have once its aliases are expanded. Aliases share one Python object,
so loading a "billion laughs" document is quick; everything that walks it afterwards (schema validation,
hashing the configuration, dumping) sees 10^9 nodes and hangs. Counting the expansion on the node graph
(each node once, memoised) refuses such a file in milliseconds."""


def _expanded_size(node: yaml.Node, where: str) -> int:
    """Nodes in `node` with every alias expanded, counted without expanding anything."""
    memo: dict[int, int] = {}
    active: set[int] = set()

    def size(n: yaml.Node) -> int:
        key = id(n)
        if key in memo:
            return memo[key]
        if key in active:
            raise UserError(f"{where}: a YAML alias refers to the node that contains it (a recursive "
                            "structure); roots files are plain trees. Write the values out.")
        active.add(key)
        if isinstance(n, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in n.value)
        elif isinstance(n, yaml.SequenceNode):
            total = 1 + sum(size(v) for v in n.value)
        else:
            total = 1
        active.discard(key)
        memo[key] = total
        if total > MAX_YAML_NODES:
            raise UserError(f"{where}: the YAML expands to more than {MAX_YAML_NODES:,} values through its "
                            "aliases (&anchor / *alias), as a \"billion laughs\" file does; refused. Write "
                            "the values out without aliases.")
        return total

    return size(node)


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML text with the safe loader and the size and alias-expansion caps; `where` names the
    file (or option) in messages. Syntax errors become a UserError naming the line."""
    if len(text) > MAX_YAML_BYTES:
        raise UserError(f"{where}: {len(text):,} characters of YAML, more than the {MAX_YAML_BYTES:,} roots "
                        "reads; refused. Is this the right file?")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, where)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(
            f"{where}:{at}: invalid YAML ({problem}). Fix the syntax at that line "
            "(check indentation, quotes and colons)."
        ) from None
    except RecursionError:
        raise UserError(f"{where}: YAML nested too deeply; refused.") from None
    finally:
        loader.dispose()


def load_yaml(path: Path) -> Any:
    """Load YAML with the safe loader (`parse_yaml`: size and alias caps); syntax errors become a
    UserError naming file and line."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise UserError(f"{path}: file not found.") from None
    if size > MAX_YAML_BYTES:
        raise UserError(f"{path}: {size:,} bytes, more than the {MAX_YAML_BYTES:,} bytes roots reads from a "
                        "YAML file; refused. Is this the right file?")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: file not found.") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start}); "
                        "save it as UTF-8.") from None
    return parse_yaml(text, str(path))


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
