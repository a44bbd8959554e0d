"""Per-source catalogue operations (ROOTS `01a_catalogue_cleaning_and_filtering`, `clean.py`).

A card lists them in order under `recipe.operations`; each either rewrites the text or rejects the
document, and a rejection's reason is the operation's own name so the stats count it like a filter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from roots.core.errors import UserError

CODE_MARKERS = ("{", "}", "[if", "<script")
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]{0,20}(?:\s[^<>]{0,500})?/?>")
_SMALL_BYTES = re.compile(r"^filter_small_docs_bytes_(\d+)$")
_SMALL_WORDS = re.compile(r"^filter_small_docs_words_(\d+)$")

# (text, meta) -> (new text, None) or (text, detail) when the document is rejected
Operation = Callable[[str, dict], tuple[str, str | None]]


def _remove_empty(text: str, meta: dict) -> tuple[str, str | None]:
    return text, ("empty document" if not text.strip() else None)


def _remove_lines_with_code(text: str, meta: dict) -> tuple[str, str | None]:
    lines = text.split("\n")
    kept = [ln for ln in lines if not any(marker in ln for marker in CODE_MARKERS)]
    return "\n".join(kept), None


def _newline_to_space(text: str, meta: dict) -> tuple[str, str | None]:
    return text.replace("\n", " "), None


def _wiki_user_titles(text: str, meta: dict) -> tuple[str, str | None]:
    title = str(meta.get("title", ""))
    return text, (f"wiki user page title {title[:80]!r}" if title.startswith("User ") else None)


def _remove_html(text: str, meta: dict) -> tuple[str, str | None]:
    return _HTML_TAG.sub("", text), None


def _min_bytes(n: int) -> Operation:
    def op(text: str, meta: dict) -> tuple[str, str | None]:
        size = len(text.encode("utf-8"))
        return text, (f"{size} bytes < {n}" if size < n else None)

    return op


def _min_words(n: int) -> Operation:
    def op(text: str, meta: dict) -> tuple[str, str | None]:
        words = len(text.split())
        return text, (f"{words} words < {n}" if words < n else None)

    return op


_FIXED: dict[str, Operation] = {
    "filter_remove_empty_docs": _remove_empty,
    "remove_lines_with_code": _remove_lines_with_code,
    "replace_newline_with_space": _newline_to_space,
    "filter_wiki_user_titles": _wiki_user_titles,
    "remove_html_spans": _remove_html,
}


def operation(name: str) -> Operation:
    if name in _FIXED:
        return _FIXED[name]
    if m := _SMALL_BYTES.match(name):
        return _min_bytes(int(m.group(1)))
    if m := _SMALL_WORDS.match(name):
        return _min_words(int(m.group(1)))
    raise UserError(f"unknown recipe operation {name!r}; known: {', '.join(_FIXED)}, "
                    "filter_small_docs_bytes_<N>, filter_small_docs_words_<N>")


@dataclass(frozen=True)
class Recipe:
    names: tuple[str, ...]

    @classmethod
    def from_names(cls, names: Sequence[str]) -> Recipe:
        for name in names:
            operation(name)  # validate early, before any worker starts
        return cls(tuple(names))

    def apply(self, text: str, meta_json: str) -> tuple[str, str | None, str]:
        """Run the operations in order; return (text, rejecting operation or None, detail)."""
        if not self.names:
            return text, None, ""
        meta = json.loads(meta_json) if meta_json else {}
        for name in self.names:
            text, detail = operation(name)(text, meta)
            if detail is not None:
                return text, name, detail
        return text, None, ""
