"""Issue 20: faithful to ROOTS where ROOTS was right, not stricter by accident, thresholds for every
language and language ID that suits real text. Real models and real text (the bundled UDHR sample)."""

from __future__ import annotations

import json
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from roots.core import workspace
from roots.core.util import sha256_file
from roots.jobs.run import LangidScores, default_threshold_warnings, plan
from roots.stages import calibrate, quality
from roots.stages.process import DocumentProcessor, ProcessConfig
from roots.stages.routing import load_router, paragraphs, predict_paragraphs
from tests.conftest import REPO, UDHR, write_card

Cli = Callable[..., tuple[int, str, str]]
AFRICAN = ("ha", "ig", "ny", "sn", "st", "sw", "xh", "zu", "so", "yo")


def _udhr(langs: tuple[str, ...]) -> list[dict]:
    with UDHR.open(encoding="utf-8") as fh:
        return [r for r in map(json.loads, fh) if r["lang"] in langs]


# ------------------------------------------------------------ a multi source keeps good African text
def test_multi_source_keeps_good_udhr_paragraphs_in_ten_african_languages() -> None:
    """Every UDHR paragraph of ha ig ny sn st sw xh zu so yo through the processor as the bundled `udhr`
    source runs it (`multi`, its card's thresholds). "Good" leaves out two kinds of paragraph: those
    under the source's own word minimum (headings such as "Mkutano Mkuu"), and the Chimwiini
    translation, a Swahili variety that no language-ID backend recognises (fastText reads it as es, en,
    fi... at 0.06-0.24). Before issue 20 the default stop-word threshold kept 6 of 40 Zulu and 49 of 68
    Somali paragraphs."""
    card = yaml.safe_load((REPO / "sources" / "udhr.yaml").read_text(encoding="utf-8"))
    thresholds = card["recipe"]["thresholds"]
    minimum = quality.resolve_params("zu", thresholds).number_words_min
    records = [r for r in _udhr(AFRICAN) if "Chimwiini" not in r["lang_name"]
               and len(r["text"].split()) >= minimum]
    processor = DocumentProcessor(ProcessConfig(source="udhr", thresholds=thresholds))
    rows = processor.process([{"id": r["id"], "text": r["text"]} for r in records])
    kept: Counter[str] = Counter()
    total: Counter[str] = Counter()
    lost: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    for rec, row in zip(records, rows):
        total[rec["lang"]] += 1
        if row["status"] == "kept":
            kept[rec["lang"]] += 1
        else:
            lost[rec["lang"]][(row["lang"], row["reason"])] += 1
    for lang in AFRICAN:
        assert total[lang] >= 30, lang
        assert kept[lang] / total[lang] >= 0.90, (lang, kept[lang], total[lang], dict(lost[lang]))
        # none lost on stop words while labelled correctly (one Igbo paragraph read as vi fails vi's list)
        assert not lost[lang][(lang, "stopwords")], lang


# ------------------------------------------------------------------ language ID on technical text
MAN_PAGES = [
    ("NAME\n    ls - list directory contents\n\nSYNOPSIS\n    ls [OPTION]... [FILE]...\n\nDESCRIPTION\n"
    "    List information about the FILEs (the current directory by default). Sort entries alphabetically "
    "if none of -cftuvSUX nor --sort is specified.\n\n    -a, --all\n        do not ignore entries starting "
    "with .\n\n    -l  use a long listing format"),
    ("tar -czf backup.tar.gz /etc /var/lib/dpkg\n\nCreate a gzip-compressed archive of the configuration. "
    "Use -x to extract and -t to list the members; --exclude=PATTERN skips files matching the pattern."),
    ("grep -rn --include='*.py' 'def main' src/\n\nSearch recursively for the pattern, print line numbers, "
    "and only look in Python files. With -l only the names of matching files are printed; -v inverts the "
    "match."),
    ("ssh -p 2222 -i ~/.ssh/id_ed25519 user@host 'df -h /'\n\nConnect on port 2222 with the given key and "
    "run df on the remote machine. Add -v, -vv or -vvv for debugging output when the connection fails."),
    ("find . -name '*.log' -mtime +7 -delete\n\nRemove log files older than seven days below the current "
    "directory. Test the expression without -delete first, since the deletion cannot be undone."),
]
GERMAN = ("Die Datei wird im aktuellen Verzeichnis gespeichert. Mit der Option -v werden ausführliche "
          "Meldungen ausgegeben, und mit -q bleibt das Programm still, solange kein Fehler auftritt.")


def _man_rows(**settings: object) -> list[dict]:
    thresholds = {"en": {"number_words_min": 5, **settings}}
    processor = DocumentProcessor(ProcessConfig(source="man", declared=("en",), thresholds=thresholds))
    return processor.process([{"id": str(i), "text": t} for i, t in enumerate([*MAN_PAGES, GERMAN])])


def test_declared_english_man_pages_are_not_rejected_for_a_low_score() -> None:
    rows = _man_rows()
    english, german = rows[:-1], rows[-1]
    low = [r for r in english if r["lang_predicted"] == "en" and r["lang_score"] < 0.80]
    assert len(low) >= 3  # the case the issue describes: recognised, but below en's lid_min 0.80
    assert all(r["reason"] != "language" for r in english)
    assert all(r["lang"] == "en" for r in english)
    assert german["lang_predicted"] == "de" and german["reason"] == "language"  # still rejected
    assert "declared en" in german["detail"]


def test_lid_strict_declared_restores_roots_rule() -> None:
    rows = _man_rows(lid_strict_declared=True)
    for row in rows[:-1]:
        assert (row["reason"] == "language") == (row["lang_score"] < 0.80), row
    assert rows[-1]["reason"] == "language"


MIXED = ("The backup script copies the configuration of every server to the archive host each night. "
         "It keeps the last seven copies and removes older ones, so the archive never grows without limit. "
         "If a copy fails, the script sends a message to the operators and tries again an hour later.\n\n"
         "rsync -az --delete /etc/ backup@archive:/srv/etc/ && tar -czf /srv/etc.tgz /srv/etc/ "
         "&& find /srv -name '*.tgz' -mtime +7 -delete\n\n"
         "The operators can run the same script by hand with the --now option when they change a server.")


def test_paragraph_scoring_judges_the_prose_not_the_command_block() -> None:
    assert len(paragraphs(MIXED)) == 3 and paragraphs("short\n\ntext") == ["short\n\ntext"]
    outcome = {}
    for setting in (False, True):
        thresholds = {"default": {"lid_paragraphs": setting}}
        processor = DocumentProcessor(ProcessConfig(source="m", thresholds=thresholds))
        outcome[setting] = processor.process([{"id": "1", "text": MIXED}])[0]
    # one document score: the command line drags English below 0.80 in a multi source
    assert outcome[False]["lang_predicted"] == "en" and outcome[False]["reason"] == "language"
    # paragraph votes: the prose paragraphs decide, with their own scores weighted by length
    assert outcome[True]["lang_predicted"] == "en" and outcome[True]["status"] == "kept"
    router = load_router()
    parts = paragraphs(MIXED)
    each = router.predict(parts)
    english = [(len(p), d.score) for p, d in zip(parts, each) if d.lang == "en"]
    expected = sum(n * s for n, s in english) / sum(n for n, _ in english)
    decision = predict_paragraphs(router, [MIXED])[0]
    assert decision.lang == "en" and decision.score == pytest.approx(expected)
    # a document whose paragraphs are mostly German is German
    assert predict_paragraphs(router, [f"{GERMAN}\n\n{GERMAN}\n\n{MAN_PAGES[1]}"])[0].lang == "de"


def test_lid_after_word_removal_reads_the_text_roots_read() -> None:
    text = ("Read the documentation at https://docs.example.org/guide/install.html and "
            "www.example.org/faq before you write to us; the answers to most questions are there already, "
            "http://mirror.example.net/pub/ has the files.")
    scores = {}
    for setting in (False, True):
        processor = DocumentProcessor(ProcessConfig(
            source="s", declared=("en",), thresholds={"en": {"lid_after_word_removal": setting}}))
        scores[setting] = processor.process([{"id": "1", "text": text}])[0]["lang_score"]
    router = load_router()
    modified = quality.modify_document(text, quality.load_params("en"))
    assert modified != text
    assert scores[True] == pytest.approx(router.predict([modified])[0].score, abs=1e-6)
    assert scores[False] == pytest.approx(router.predict([text])[0].score, abs=1e-6)
    assert scores[True] != scores[False]


def test_run_summary_warns_when_language_rejections_predicted_the_declared_language() -> None:
    cfg = ProcessConfig(source="man", declared=("en",), thresholds={"en": {"lid_strict_declared": True}})
    scores = LangidScores(cfg)
    for i in range(20):  # 20 English documents at 0.50..0.88, 8 of them below 0.80 rejected; 1 German one
        score = 0.50 + 0.02 * i
        scores.add({"lang_predicted": "en", "lang_score": score}, "language" if score < 0.80 else None)
    scores.add({"lang_predicted": "de", "lang_score": 0.99}, "language")
    summary = scores.summary()["en"]
    assert summary["predicted"] == 20 and summary["below_lid_min"] == 15
    assert summary["language_rejections_predicting_it"] == 15
    assert summary["suggested_lid_min"] == pytest.approx(0.52, abs=0.001)  # 95% of the 20 reach it
    notes = scores.notes()
    assert any(n.startswith("warning: 15 of 16 `language` rejections") for n in notes)
    calm = LangidScores(cfg)
    calm.add({"lang_predicted": "de", "lang_score": 0.99}, "language")
    assert not any(n.startswith("warning") for n in calm.notes())


# --------------------------------------------------------------------------- calibrated thresholds
def _split(lang: str) -> tuple[list[str], list[str]]:
    """A fixed pseudo-random third of the language's UDHR paragraphs (every translation) held out."""
    records = _udhr((lang,))
    held = [r["text"].replace("\n", " ") for r in records if zlib.crc32(r["id"].encode()) % 3 == 0]
    train = [r["text"].replace("\n", " ") for r in records if zlib.crc32(r["id"].encode()) % 3]
    return train, held


@pytest.mark.parametrize("lang, keep", [("zh", 0.95), ("zh", 0.90), ("ha", 0.90)])
def test_calibrate_writes_thresholds_that_keep_the_share_of_held_out_lines(
        ws: workspace.Workspace, run_cli: Cli, tmp_path: Path, lang: str, keep: float) -> None:
    train, held = _split(lang)
    corpus = tmp_path / f"{lang}.txt"
    corpus.write_text("\n".join(train) + "\n", encoding="utf-8")
    rc, out, _ = run_cli("--workspace", str(ws.root), "thresholds", "calibrate", "--lang", lang,
                         "--corpus", str(corpus), "--keep", str(keep))
    assert rc == 0, out
    settings = ws.settings()
    record = settings.calibration[lang]
    assert record["corpus_sha256"] == sha256_file(corpus) and record["keep"] == keep
    assert record["lines"] == len(train) and record["date"]
    assert set(record["percentile"]) == set(settings.thresholds[lang])
    params = quality.resolve_params(lang, settings.thresholds)
    assert params.stopwords_min is not None  # calibrated for a language with a list, though default is off
    stats = calibrate.measure(held, lang, params)
    rejected = [quality.decide(s, params)[0] for s in stats]
    assert sum(r is not None for r in rejected) <= (1 - keep) * len(stats), Counter(rejected)
    # the run sees them as calibrated
    assert quality.threshold_origin(lang, tuple(settings.calibration)) == "calibrated"
    # roots.yaml is governed: the calibration is an audited change, so verify still passes
    rc, out, err = run_cli("--workspace", str(ws.root), "governance", "verify")
    assert rc == 0, out + err
    entries = [json.loads(line) for line in (ws.governance_dir / "audit.jsonl").read_text().splitlines()]
    assert entries[-1]["action"] == "config.calibrate" and entries[-1]["target"] == f"thresholds.{lang}"


def test_calibrate_refuses_too_little_text_and_a_dry_run_writes_nothing(
        ws: workspace.Workspace, run_cli: Cli, tmp_path: Path) -> None:
    train, _ = _split("ha")
    corpus = tmp_path / "ha.txt"
    corpus.write_text("\n".join(train) + "\n", encoding="utf-8")
    before = ws.config_path.read_text()
    rc, _, err = run_cli("--workspace", str(ws.root), "thresholds", "calibrate", "--lang", "ha",
                         "--corpus", str(corpus), "--keep", "0.98")
    assert rc == 2 and "too few" in err and "give at least" in err
    rc, out, _ = run_cli("--workspace", str(ws.root), "thresholds", "calibrate", "--lang", "ha",
                         "--corpus", str(corpus), "--keep", "0.9", "--dry-run")
    assert rc == 0 and "dry run" in out and "stopwords_min" in out
    assert ws.config_path.read_text() == before
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\n\xff\xfe broken\n")
    rc, _, err = run_cli("--workspace", str(ws.root), "thresholds", "calibrate", "--lang", "ha",
                         "--corpus", str(bad))
    assert rc == 2 and f"{bad}:2" in err
    rc, _, err = run_cli("--workspace", str(ws.root), "thresholds", "calibrate", "--lang", "ha",
                         "--corpus", str(tmp_path / "missing.txt"))
    assert rc == 2 and "does not exist" in err


def test_validate_and_run_warn_for_a_declared_language_on_default(
        ws: workspace.Workspace, run_cli: Cli, tmp_path: Path) -> None:
    data = tmp_path / "ha.jsonl"
    data.write_text(json.dumps({"id": "1", "text": "Dukkan 'yan Adam an haife su 'yantattu"}) + "\n")
    write_card(ws, "hausa", str(data), languages="[ha]")
    write_card(ws, "english", str(data), languages="[en]")
    rc, _, err = run_cli("--workspace", str(ws.root), "source", "validate")
    assert rc == 0
    assert "hausa: declared language ha runs on the `default` thresholds" in err
    assert "english" not in err  # ROOTS's own row
    train, _ = _split("ha")
    corpus = tmp_path / "ha.txt"
    corpus.write_text("\n".join(train) + "\n", encoding="utf-8")
    assert run_cli("--workspace", str(ws.root), "thresholds", "calibrate", "--lang", "ha",
                   "--corpus", str(corpus), "--keep", "0.9")[0] == 0
    p = plan(ws, "hausa")
    assert p.cfg.calibrated == ("ha",) and default_threshold_warnings(p.card, p.cfg) == []
    rc, _, err = run_cli("--workspace", str(ws.root), "source", "validate")
    assert rc == 0 and "runs on the `default` thresholds" not in err
