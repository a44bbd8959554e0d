"""Training per-language perplexity models (`roots lm train`): SentencePiece + KenLM, the cc_net recipe.

The normalisation and the model files are the scoring side's (`roots.stages.perplexity`), so training
and scoring cannot drift apart. `lmplz` and `build_binary` are KenLM's C++ tools, built by `make lmplz`
(`roots/tools/build_kenlm.sh`); nothing here downloads anything.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from roots.core import publishing
from roots.core.errors import JobError, UserError
from roots.core.util import library_versions, sha256_file
from roots.stages.perplexity import (
    CALIBRATION,
    CALIBRATION_PERCENTILES,
    LM_BINARY,
    NORMALISATION_VERSION,
    SP_MODEL,
    PerplexityModel,
    normalise_for_lm,
)

# --------------------------------------------------------------------------------------------------
# Locating the KenLM command-line tools
# --------------------------------------------------------------------------------------------------

_REPO_ROOT = Path(__file__).resolve().parents[2]
#: Where `make lmplz` installs the tools. A module attribute so tests can point it elsewhere.
REPO_TOOLS_BIN = _REPO_ROOT / ".tools" / "bin"
KENLM_BIN_ENV = "ROOTS_KENLM_BIN"


def find_tool(name: str) -> str:
    """Return the path of a KenLM tool (`lmplz`, `build_binary`).

    Looked up in $ROOTS_KENLM_BIN, then `<repo>/.tools/bin` (where `make lmplz` puts it), then PATH:
    an explicit override first, the project's own build next, a system install last. The tools are
    not pip-installable, so a missing one is a setup problem the operator can fix, hence UserError.
    """
    searched: list[str] = []
    env_dir = os.environ.get(KENLM_BIN_ENV)
    candidates: list[Path] = []
    if env_dir:
        candidates.append(Path(env_dir) / name)
        searched.append(f"${KENLM_BIN_ENV}={env_dir}")
    candidates.append(Path(REPO_TOOLS_BIN) / name)
    searched.append(str(REPO_TOOLS_BIN))
    for cand in candidates:
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    on_path = shutil.which(name)
    if on_path:
        return on_path
    searched.append("PATH")
    raise UserError(
        f"{name} not found (looked in {', '.join(searched)}); it is KenLM's C++ tool, not part of the "
        f"Python package: build it with `make lmplz` (or set ${KENLM_BIN_ENV} to a directory holding it)"
    )


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------

_LANG_RE = re.compile(r"[a-z]{2,3}(_[A-Za-z]+)?")



def _validate_lang(lang: str) -> None:
    if not isinstance(lang, str) or not _LANG_RE.fullmatch(lang):
        raise UserError(
            f"invalid language code {lang!r}: expected an ISO 639 code such as 'en', 'fra' or 'zh_Hans' "
            "(2-3 lower-case letters, optionally '_' and a script/variant)"
        )


def _read_normalised_lines(corpus: Path) -> list[str]:
    """Read a one-paragraph-per-line corpus and normalise each line, dropping lines that end up empty.

    Training is per line (not per document) like cc_net's Wikipedia `.txt` files; the normalisation
    still removes characters inside a line exactly as at scoring time.
    """
    if not corpus.exists():
        raise UserError(f"LM training corpus {corpus} does not exist")
    if not corpus.is_file():
        raise UserError(f"LM training corpus {corpus} is not a regular file")
    lines: list[str] = []
    with corpus.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(
                    f"{corpus}:{lineno}: not valid UTF-8 ({exc.reason} at byte {exc.start}); "
                    "convert the corpus to UTF-8"
                ) from None
            norm = normalise_for_lm(line)
            if norm:
                lines.append(norm)
    if not lines:
        raise UserError(f"LM training corpus {corpus} has no text left after normalisation (empty file?)")
    return lines


def _split_holdout(lines: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Deterministically split lines into (train, held-out) with a seeded shuffle of line indices.

    Order within each part follows the corpus, so the same corpus+seed always gives the same
    files and therefore the same model. At least one line stays on each side when there are two
    or more lines; a one-line corpus is all training.
    """
    n = len(lines)
    if fraction <= 0 or n < 2:
        return list(lines), []
    k = min(n - 1, max(1, round(n * fraction)))
    order = list(range(n))
    random.Random(seed).shuffle(order)
    held = set(order[:k])
    train = [line for i, line in enumerate(lines) if i not in held]
    heldout = [line for i, line in enumerate(lines) if i in held]
    return train, heldout


def _run_tool(argv: list[str], stdin_path: Path, stdout_path: Path, log_path: Path, what: str) -> None:
    """Run a KenLM tool with files for stdin/stdout/stderr and turn a failure into a JobError.

    stderr goes to a file rather than a pipe: lmplz writes progress bars there and a full pipe
    would block it; the tail is what the operator needs to see.
    """
    with stdin_path.open("rb") as fin, stdout_path.open("wb") as fout, log_path.open("wb") as ferr:
        try:
            proc = subprocess.run(argv, stdin=fin, stdout=fout, stderr=ferr, check=False)
        except OSError as exc:
            raise JobError(f"{what}: could not run {argv[0]}: {exc}") from None
    if proc.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:].strip()
        raise JobError(f"{what} failed (exit status {proc.returncode}): {' '.join(argv)}\n{tail}")


def _percentile(sorted_values: list[float], pct: float) -> float:
    """Linear-interpolation percentile (numpy's default 'linear' method) of an already sorted list."""
    if not sorted_values:
        raise ValueError("percentile of an empty list")
    pos = (len(sorted_values) - 1) * pct / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _versions() -> dict[str, str | None]:
    return library_versions(("kenlm", "sentencepiece"))


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for line in lines:
            fh.write(line)
            fh.write("\n")


@contextlib.contextmanager
def _real_stderr() -> Iterator[None]:
    """SentencePiece's log redirection needs `sys.stderr.fileno()`; captured streams (pytest, notebooks,
    the CLI under another program) have none, so the process's real stderr stands in while it trains."""
    saved = sys.stderr
    try:
        saved.fileno()
    except (AttributeError, OSError, ValueError):
        sys.stderr = sys.__stderr__
    try:
        yield
    finally:
        sys.stderr = saved


def train_lm(
    lang: str,
    corpus: Path,
    out_dir: Path,
    order: int = 5,
    vocab_size: int = 8000,
    memory: str = "1G",
    holdout_fraction: float = 0.1,
    seed: int = 0,
) -> dict[str, Any]:
    """Train a SentencePiece + KenLM perplexity model for `lang` from a one-paragraph-per-line corpus.

    Mirrors the cc_net recipe ROOTS used (unigram SentencePiece with character coverage 0.9995 and
    a soft vocabulary limit, `lmplz -o 5 --discount_fallback`, `build_binary`), scaled down by the
    defaults so it runs on a laptop. Held-out lines give a perplexity distribution stored as
    percentiles in calibration.json, because thresholds like ROOTS' 1,500 for English only make
    sense for the exact Wikipedia models they were tuned on.

    Everything is written into a temporary directory next to `out_dir` and renamed into place at
    the end, so a crash never leaves a half-written model that a later filter run would load.
    Returns the calibration dictionary (also written to calibration.json) plus `model_dir`.
    """
    import sentencepiece as spm

    _validate_lang(lang)
    corpus = Path(corpus)
    out_dir = Path(out_dir)
    if order < 2:
        raise UserError(f"LM order must be at least 2, got {order}")
    if vocab_size < 2:
        raise UserError(f"SentencePiece vocabulary size must be at least 2, got {vocab_size}")
    if not 0.0 <= holdout_fraction < 1.0:
        raise UserError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
    if not corpus.exists():  # cheap checks first, the (possibly long) corpus read last
        raise UserError(f"LM training corpus {corpus} does not exist")
    lmplz = find_tool("lmplz")
    build_binary = find_tool("build_binary")

    lines = _read_normalised_lines(corpus)
    train, heldout = _split_holdout(lines, holdout_fraction, seed)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkdtemp: its 0700 mode would survive the rename and hide the model from other users.
    work = publishing.temp_dir_for(out_dir)
    work.mkdir()
    try:
        scratch = work / "scratch"
        scratch.mkdir()
        spm.set_random_generator_seed(seed)
        # Sentences and the model go through memory, not files: the trainer spec saved inside sp.model
        # would otherwise record the temporary paths and the same corpus would give different bytes.
        sp_log = scratch / "spm_train.log"
        model_bytes = io.BytesIO()
        try:
            with sp_log.open("w", encoding="utf-8") as log_fh, _real_stderr():
                spm.SentencePieceTrainer.train(
                    sentence_iterator=iter(train),
                    model_writer=model_bytes,
                    model_type="unigram",
                    vocab_size=vocab_size,
                    hard_vocab_limit=False,
                    character_coverage=0.9995,
                    num_threads=1,  # reproducible piece inventory; the training cost is dominated by lmplz
                    # a seeded sample bounds memory on Wikipedia-sized corpora; small ones are used whole
                    input_sentence_size=2_000_000,
                    shuffle_input_sentence=True,
                    minloglevel=1,
                    logstream=log_fh,
                )
        except (RuntimeError, OSError) as exc:
            tail = sp_log.read_text("utf-8", errors="replace")[-2000:].strip() if sp_log.exists() else ""
            raise JobError(f"SentencePiece training on {corpus} failed: {exc}\n{tail}".rstrip()) from None
        (work / SP_MODEL).write_bytes(model_bytes.getvalue())
        sp = spm.SentencePieceProcessor(model_file=str(work / SP_MODEL))

        pieces_txt = scratch / "train.pieces.txt"
        _write_lines(pieces_txt, (" ".join(sp.encode_as_pieces(line)) for line in train))

        arpa = scratch / "lm.arpa"
        _run_tool(
            [lmplz, "-o", str(order), "-S", memory, "-T", str(scratch), "--discount_fallback",
             "--skip_symbols"],
            stdin_path=pieces_txt,
            stdout_path=arpa,
            log_path=scratch / "lmplz.log",
            what=f"lmplz (training the {lang} {order}-gram model)",
        )
        _run_tool(
            [build_binary, str(arpa), str(work / LM_BINARY)],
            stdin_path=Path(os.devnull),
            stdout_path=scratch / "build_binary.out",
            log_path=scratch / "build_binary.log",
            what=f"build_binary (converting the {lang} model)",
        )

        model = PerplexityModel(work, calibration={})
        calib_lines = heldout if heldout else train
        ppls = sorted(model.perplexity(line) for line in calib_lines)
        percentiles = {f"p{p}": round(_percentile(ppls, p), 1) for p in CALIBRATION_PERCENTILES}
        calibration: dict[str, Any] = {
            "lang": lang,
            "order": order,
            "vocab_size_requested": vocab_size,
            "vocab_size": sp.get_piece_size(),
            "memory": memory,
            "seed": seed,
            "holdout_fraction": holdout_fraction,
            "n_lines": len(lines),
            "n_train_lines": len(train),
            "n_heldout_lines": len(heldout),
            "calibration_source": "heldout" if heldout else "train",
            "corpus": str(corpus),
            "corpus_sha256": sha256_file(corpus),
            "normalization_version": NORMALISATION_VERSION,
            "perplexity": ("ROOTS/cc_net: round(10 ** (-log10 score / (n_pieces + 1)), 1), bos/eos, "
                           "per document"),
            "percentiles": percentiles,
            "mean": round(sum(ppls) / len(ppls), 1),
            # cc_net buckets documents into head (<= p30), middle (<= p60) and tail (> p60).
            "cc_net_cutoffs": {"head": percentiles["p30"], "middle": percentiles["p60"]},
            "versions": _versions(),
        }
        (work / CALIBRATION).write_text(json.dumps(calibration, indent=2, sort_keys=True) + "\n", "utf-8")
        shutil.rmtree(scratch)
        publishing.swap_into_place(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    calibration["model_dir"] = str(out_dir)
    return calibration


