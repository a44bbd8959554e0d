"""Per-language routing between language-ID backends (fastText first, CLD3 for what fastText misses).

lid.176 does not know most of ROOTS's Niger-Congo languages (Igbo, Zulu, Xhosa, Shona, Sesotho,
Chichewa...) and is unsure of Swahili, Yoruba and Somali, while CLD3 identifies them reliably. Which
backend is trusted for which language, and at what score, is data (`roots/data/langid_routing.yaml`), so
it can be re-tuned, or pointed at a GlotLID model, without code changes. The rules are written at the top
of that file; `Router.predict` implements them and `decide` is the same rule on precomputed predictions
(used by `roots langid coverage` to score each backend and the combination on one pass).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

from roots.core.errors import UserError
from roots.stages import langid

ROUTING_FILE = "data/langid_routing.yaml"
LID_MIN = "lid_min"  # a threshold that means "this language's lid_min from the quality parameters"
KINDS = ("fasttext", "cld3")

Threshold = float | str  # a score in [0, 1] or LID_MIN
LidMin = Callable[[str], float]


@dataclass(frozen=True)
class Decision:
    """The routed verdict for one document, as stored in `lang`, `lang_score` and `lang_backend`.

    `trusted` is False when no backend cleared its threshold; the first backend's verdict is then
    kept, and the language filter (lid_min) rejects it as it would have without routing.
    """

    lang: str
    score: float
    backend: str
    trusted: bool


@dataclass(frozen=True)
class BackendSpec:
    name: str
    kind: str
    model: str | None = None
    fold_diacritics: bool = True
    default_threshold: Threshold | None = LID_MIN  # None: trusted only for the languages listed for it


@dataclass(frozen=True)
class RoutingTable:
    """The parsed routing YAML; `languages` maps a language to {backend: threshold} (explicit routes)."""

    order: tuple[str, ...]
    backends: Mapping[str, BackendSpec]
    languages: Mapping[str, Mapping[str, Threshold]]
    report_languages: Mapping[str, str]  # language -> group (niger_congo, indic), for the coverage report
    source: str


# ------------------------------------------------------------------------------------------ table
def _threshold(value: Any, where: str) -> Threshold:
    """A number in [0, 1] or `lid_min`; anything else is a typo that must not silently route nothing."""
    if value == LID_MIN:
        return LID_MIN
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise UserError(f"{where}: threshold {value!r} must be a number from 0 to 1 or `lid_min`.")
    return float(value)


def parse_table(data: Any, source: str = "<routing table>") -> RoutingTable:
    """Validate the YAML document; every mistake names the field, since a silently ignored route would
    leave a language unidentified without anyone noticing."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping with `order`, `backends` and `languages`.")
    raw_backends = data.get("backends")
    if not isinstance(raw_backends, dict) or not raw_backends:
        raise UserError(f"{source}: `backends` must map backend names to {{kind: fasttext|cld3, ...}}.")
    backends: dict[str, BackendSpec] = {}
    for name, spec in raw_backends.items():
        where = f"{source}: backends.{name}"
        if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
            raise UserError(f"{where}: `kind` must be one of {', '.join(KINDS)}.")
        unknown = sorted(set(spec) - {"kind", "model", "fold_diacritics", "default_threshold"})
        if unknown:
            raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}.")
        if spec.get("model") is not None and spec["kind"] != "fasttext":
            raise UserError(f"{where}: `model` applies to fastText backends only (CLD3's model is built in).")
        backends[str(name)] = BackendSpec(
            name=str(name), kind=spec["kind"], model=spec.get("model"),
            fold_diacritics=bool(spec.get("fold_diacritics", True)),
            default_threshold=None if spec.get("default_threshold", LID_MIN) is None
            else _threshold(spec.get("default_threshold", LID_MIN), f"{where}.default_threshold"))
    order = data.get("order") or list(backends)
    if not isinstance(order, list) or not order or any(name not in backends for name in order):
        raise UserError(f"{source}: `order` must list backends defined under `backends` "
                        f"({', '.join(backends)}).")
    languages: dict[str, dict[str, Threshold]] = {}
    for lang, route in (data.get("languages") or {}).items():
        where = f"{source}: languages.{lang}"
        if not isinstance(route, dict) or not route:
            raise UserError(f"{where}: expected {{backend: threshold, ...}}, e.g. {{cld3: 0.7}}.")
        bad = sorted(str(name) for name in route if name not in order)
        if bad:
            raise UserError(f"{where}: backend(s) {', '.join(bad)} not in `order` ({', '.join(order)}).")
        languages[str(lang)] = {name: _threshold(route[name], f"{where}.{name}")
                                for name in order if name in route}
    report = data.get("report_languages") or {}
    if not isinstance(report, dict) or not all(isinstance(v, list) for v in report.values()):
        raise UserError(f"{source}: `report_languages` must map a group name to a list of language codes.")
    report_languages = {str(lang): str(group) for group, langs in report.items() for lang in langs}
    return RoutingTable(tuple(order), backends, languages, report_languages, source)


def load_table(path: str | os.PathLike[str] | None = None) -> RoutingTable:
    """The routing table at `path`, or the packaged default."""
    if path is None:
        import yaml

        text = importlib_resources.files("roots").joinpath(ROUTING_FILE).read_text("utf-8")
        return parse_table(yaml.safe_load(text), f"roots/{ROUTING_FILE}")
    from roots.core.yamlio import load_yaml

    resolved = Path(os.path.expanduser(os.fspath(path)))
    return parse_table(load_yaml(resolved), str(resolved))


@lru_cache(maxsize=256)
def default_lid_min(lang: str) -> float:
    """`lid_min` from the packaged quality parameters (no recipe overrides): for tools outside a run."""
    from roots.stages import quality

    return quality.load_params(lang).lid_min


# ------------------------------------------------------------------------------------------ router
class Router:
    """Backends plus the table; holds no per-document state, so one instance serves a whole worker.

    Backends load lazily on first use: a batch that fastText decides entirely never loads CLD3.
    `model` is the run's fastText model (`langid.model` / `recipe.langid_model`); it applies to
    fastText backends whose table entry names no model of its own.
    """

    def __init__(self, table: RoutingTable | None = None, model: str | None = None,
                 backends: Mapping[str, langid.Backend] | None = None) -> None:
        self.table = table or load_table()
        self.model = model
        self._backends: dict[str, langid.Backend] = dict(backends or {})
        self._routes: dict[str, dict[str, Threshold]] = {}

    @property
    def order(self) -> tuple[str, ...]:
        return self.table.order

    def backend(self, name: str) -> langid.Backend:
        if name not in self._backends:
            spec = self.table.backends[name]
            if spec.kind == "fasttext":
                self._backends[name] = langid.load(spec.model or self.model)
            else:
                self._backends[name] = langid.load_cld3(spec.fold_diacritics)
        return self._backends[name]

    def route(self, lang: str) -> dict[str, Threshold]:
        """{backend: threshold} trusted for `lang`, in `order`; empty when no backend covers it."""
        if lang not in self._routes:
            explicit = self.table.languages.get(lang)
            if explicit is not None:
                route = dict(explicit)
            else:
                route = {}
                # script variants (CLD3's `hi-Latn`, `zh-Latn`) have no parameters of their own: never by
                # default
                for name in self.order if "-" not in lang else ():
                    default = self.table.backends[name].default_threshold
                    if default is not None and self.backend(name).knows(lang):
                        route = {name: default}
                        break
            self._routes[lang] = route
        return self._routes[lang]

    def covers(self, lang: str) -> bool:
        """Whether some backend is trusted for `lang`; an uncovered declared language is kept as declared."""
        return bool(self.route(lang))

    def trusts(self, name: str, pred: langid.Prediction, lid_min: LidMin | None = None) -> bool:
        """Is backend `name`'s verdict `pred` good enough to decide the document?"""
        threshold = self.route(pred.lang).get(name)
        if threshold is None:
            return False
        need = (lid_min or default_lid_min)(pred.lang) if threshold == LID_MIN else float(threshold)
        return pred.score >= need

    def predict(self, texts: Sequence[str], lid_min: LidMin | None = None) -> list[Decision]:
        """Routed top-1 language of each text; later backends only see the texts earlier ones left open.

        `lid_min(lang)` gives the run's lid_min (with recipe overrides) for `lid_min` thresholds.
        """
        decisions: list[Decision | None] = [None] * len(texts)
        pending = list(range(len(texts)))
        first: dict[int, langid.Prediction] = {}
        for name in self.order:
            if not pending:
                break
            preds = self.backend(name).predict([texts[i] for i in pending])
            if not first:
                first = dict(zip(pending, preds))
            still = []
            for i, pred in zip(pending, preds):
                if self.trusts(name, pred, lid_min):
                    decisions[i] = Decision(pred.lang, pred.score, name, True)
                else:
                    still.append(i)
            pending = still
        for i in pending:
            decisions[i] = Decision(first[i].lang, first[i].score, self.order[0], False)
        return [d for d in decisions if d is not None]

    def predict_each(self, texts: Sequence[str]) -> dict[str, list[langid.Prediction]]:
        """Every backend's verdict on every text, for measuring backends side by side."""
        return {name: self.backend(name).predict(texts) for name in self.order}

    def decide(self, preds: Mapping[str, Sequence[langid.Prediction]],
               lid_min: LidMin | None = None) -> list[Decision]:
        """`predict`'s rule applied to precomputed `predict_each` output (same answers, all backends run)."""
        n = len(preds[self.order[0]])
        out = []
        for i in range(n):
            for name in self.order:
                pred = preds[name][i]
                if self.trusts(name, pred, lid_min):
                    out.append(Decision(pred.lang, pred.score, name, True))
                    break
            else:
                pred = preds[self.order[0]][i]
                out.append(Decision(pred.lang, pred.score, self.order[0], False))
        return out


_PARAGRAPH_RE = re.compile(r"\n[ \t]*\n")
MIN_PARAGRAPH_CHARS = 20
"""Shorter paragraphs (a heading, a lone command) carry too little text to vote on a document's language."""


def paragraphs(text: str) -> list[str]:
    """The blank-line separated paragraphs of `text` long enough to vote (all of it when none is)."""
    parts = [p.strip() for p in _PARAGRAPH_RE.split(text)]
    voting = [p for p in parts if len(p) >= MIN_PARAGRAPH_CHARS]
    return voting or [text]


def predict_paragraphs(router: Router, texts: Sequence[str], lid_min: LidMin | None = None) -> list[Decision]:
    """Paragraph-level language ID: each paragraph is predicted on its own and votes with its length.

    The document's language is the one with the most characters among its paragraphs, and its score the
    length-weighted mean score of those paragraphs. A man page whose prose is English but whose synopsis
    and option lists read as noise gets the score of its prose, instead of one diluted document score;
    a document whose paragraphs are mostly in another language still gets that language.
    """
    split = [paragraphs(text) for text in texts]
    flat = [part for parts in split for part in parts]
    decided = iter(router.predict(flat, lid_min) if flat else [])
    out = []
    for parts in split:
        votes: dict[str, list[tuple[int, Decision]]] = {}
        for part in parts:
            decision = next(decided)
            votes.setdefault(decision.lang, []).append((len(part), decision))
        lang, chosen = max(votes.items(), key=lambda kv: (sum(n for n, _ in kv[1]), kv[0]))
        weight = sum(n for n, _ in chosen)
        score = sum(n * d.score for n, d in chosen) / weight
        heaviest = max(chosen, key=lambda nd: nd[0])[1]
        out.append(Decision(lang, score, heaviest.backend, any(d.trusted for _, d in chosen)))
    return out


@lru_cache(maxsize=8)
def load_router(model: str | None = None, table: str | None = None) -> Router:
    """Process-wide cache, like `langid.load`: every DoFn instance in a worker shares the models."""
    return Router(load_table(table), model=model)


# ------------------------------------------------------------------------------------------ coverage
def read_labelled(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """(lang, text) pairs from a JSONL file with `lang` and `text` per line, texts normalised as a run
    does."""
    import json

    from roots.stages import normalise

    resolved = Path(os.path.expanduser(os.fspath(path)))
    if not resolved.is_file():
        raise UserError(f"labelled corpus {path} not found; give a JSONL file with `lang` and `text` "
                        "per line.")
    out = []
    with resolved.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                lang, text = rec["lang"], rec["text"]
            except (ValueError, KeyError, TypeError):
                raise UserError(f"{resolved}:{n}: expected a JSON object with `lang` and `text`.") from None
            if not isinstance(lang, str) or not isinstance(text, str):
                raise UserError(f"{resolved}:{n}: `lang` and `text` must be strings.")
            out.append((lang, normalise.normalise(text)))
    if not out:
        raise UserError(f"{resolved}: no labelled records.")
    return out


def describe_route(router: Router, lang: str, lid_min: LidMin | None = None) -> str:
    """`fasttext>=0.80, cld3>=0.70`, or `none (kept as declared)`: thresholds resolved for `lang`."""
    route = router.route(lang)
    if not route:
        return "none (kept as declared)"
    need = lid_min or default_lid_min
    return ", ".join(f"{name}>={need(lang) if t == LID_MIN else t:.2f}" for name, t in route.items())


def coverage(router: Router, labelled: Sequence[tuple[str, str]] = (), languages: Sequence[str] = (),
             lid_min: LidMin | None = None) -> list[dict[str, Any]]:
    """One row per language: which backends know it, its route, and with a labelled corpus, per backend
    and for the routed combination: `accuracy` (top-1 right), `kept` (right and score >= lid_min, what a
    `multi` source keeps under the right label) and `intruders` (other languages' texts kept as it).

    Measuring `kept` and `intruders`, not only accuracy, is what shows the cost of a second backend:
    text in a language nobody knows that fastText rejected may now be kept as a relative.
    """
    need = lid_min or default_lid_min
    texts = [text for _, text in labelled]
    preds = router.predict_each(texts) if texts else {name: [] for name in router.order}
    routed = router.decide(preds, lid_min) if texts else []
    verdicts: dict[str, Sequence[Any]] = {**preds, "routed": routed}
    columns = [*router.order, "routed"]
    rows: dict[str, dict[str, Any]] = {}

    def row(lang: str) -> dict[str, Any]:
        if lang not in rows:
            rows[lang] = {"lang": lang, "group": router.table.report_languages.get(lang, ""),
                          "known_by": [name for name in router.order if router.backend(name).knows(lang)],
                          "route": describe_route(router, lang, lid_min), "covered": router.covers(lang),
                          "n": 0, "accuracy": dict.fromkeys(columns, 0), "kept": dict.fromkeys(columns, 0),
                          "intruders": dict.fromkeys(columns, 0)}
        return rows[lang]

    for lang in [*(lang for lang, _ in labelled), *languages, *router.table.languages,
                 *router.table.report_languages]:
        row(lang)
    for i, (truth, _) in enumerate(labelled):
        row(truth)["n"] += 1
        for col in columns:
            v = verdicts[col][i]
            kept = v.score >= need(v.lang)
            if v.lang == truth:
                rows[truth]["accuracy"][col] += 1
                rows[truth]["kept"][col] += kept
            elif kept:  # a language outside the report still gets a row: an intruder is worth seeing
                row(v.lang)["intruders"][col] += 1
    return [rows[lang] for lang in sorted(rows)]
