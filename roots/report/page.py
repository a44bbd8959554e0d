"""`roots report`: one self-contained `report.html` for a run directory, a runs root holding several, or a
release directory.

It is what a data steward opens to decide whether a threshold is right, so every chart is drawn from the
stored per-document statistics with the threshold that was actually applied, and every removal can be
traced to example documents (the sections are in `roots.report.sections` and `roots.report.release`).

The page has inline CSS and SVG, no script and no network: every string from the data is escaped
(`roots.report.markup`), and a Content-Security-Policy forbids scripts and remote loads in case one ever
slips through. The output is deterministic (same input, same bytes): rows are ordered by id, samples are
chosen by distance to the threshold with ids breaking ties, and the only times shown are the ones
recorded in the manifests, so a report can be diffed between two runs. Memory is bounded per run (see
`roots.report.runs`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from roots.core.errors import UserError
from roots.core.yamlio import atomic_write_text
from roots.release import versions
from roots.report.markup import esc, slug
from roots.report.release import section_release
from roots.report.runs import RunData, is_run_dir, manifest_entries, read_json
from roots.report.sections import overview_lang_rows, section_overview, source_section

REPORT_NAME = "report.html"

_CSS = ("\n"
        "body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 48px;"
        "color:#222}\n"
        "h1{margin-top:24px}h2{border-bottom:2px solid #ddd;padding-top:12px}h3{margin-top:28px}\n"
        "table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #ddd;"
        "padding:2px 8px;\n"
        "vertical-align:top;text-align:left}th{background:#f4f4f4}td.n{text-align:right;"
        "font-variant-numeric:tabular-nums}\n"
        "table.kv td:first-child{font-weight:600;white-space:nowrap}code{font-size:12px;"
        "word-break:break-all}\n"
        ".muted{color:#777}.warn{color:#a15c00}.params{font-size:12px;color:#444}\n"
        "nav ul{columns:3;font-size:13px}details{margin:6px 0}summary{cursor:pointer}\n"
        ".grid{display:flex;flex-wrap:wrap;gap:6px}.chart{background:#fafafa;border:1px solid #eee}\n"
        ".chart text{font-size:9px;fill:#333}.chart .ct{font-size:10px;font-weight:600}"
        ".chart .na{text-anchor:middle;fill:#999}\n"
        ".chart .yl{text-anchor:end}.chart .xl{text-anchor:middle}.chart .bl{text-anchor:end;"
        "font-size:10px}\n"
        ".chart .bn{font-size:10px}.chart .tl{fill:#000;font-weight:600}\n"
        ".kept{fill:#4c78a8;background:#4c78a8}.rej{fill:#e45756;background:#e45756}.oth{fill:#bab0ac;"
        "background:#bab0ac}\n"
        ".quar{fill:#f58518;background:#f58518}.ax{stroke:#999}.thr{stroke:#000;stroke-width:1.2;"
        "stroke-dasharray:4 2}\n"
        ".sw{display:inline-block;width:10px;height:10px}\n"
        ".pair{display:grid;grid-template-columns:1fr 1fr;gap:10px;margin:4px 0}"
        ".pair.head{font-weight:600}\n"
        ".doc{border:1px solid #ddd;padding:4px 6px;background:#fcfcfc}.doc .meta{font-size:12px}\n"
        ".doc .detail{font-size:12px;color:#a15c00}.doc pre{white-space:pre-wrap;word-break:break-word;"
        "margin:4px 0 0;\n"
        "font-size:12px;max-height:220px;overflow:auto}\n")
# No script, no remote anything: even text that escaped escaping could not run or phone home.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def render(runs: Sequence[RunData], release: Mapping[str, Any] | None = None,
           title: str = "roots report") -> str:
    """The whole page as a string (pure: the same runs and manifest give the same bytes)."""
    toc = ['<li><a href="#release">Release</a></li>'] if release is not None else []
    toc.append('<li><a href="#overview">Documents and bytes in and out</a></li>')
    for run in runs:
        a = slug(run.name)
        toc.append(f'<li><a href="#src-{a}">{esc(run.name)}</a>: <a href="#{a}-waterfall">waterfall</a>, '
                   f'<a href="#{a}-distributions">statistics</a>, <a href="#{a}-samples">samples</a>, '
                   f'<a href="#{a}-duplicates">duplicates</a>, <a href="#{a}-pii">PII</a></li>')
    body = [f"<h1>{esc(title)}</h1>",
            (f"<p class=\"muted\">{len(runs)} source run(s): "
             f"{esc(', '.join(r.name for r in runs) or 'none')}. "
            "Times are those recorded in the run manifests.</p>"),
            f"<nav><ul>{''.join(toc)}</ul></nav>"]
    if release is not None:
        body.append(section_release(release))
    # One run's documents at a time: each run's sections and overview rows are rendered, then its `docs`
    # are dropped before the next run's are read.
    sources, lang_rows = [], []
    for run in runs:
        lang_rows.extend(overview_lang_rows(run))
        sources.append(source_section(run))
        run.release_docs()
    if runs:
        body.append(section_overview(runs, lang_rows))
    body.extend(sources)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def find_inputs(path: Path) -> tuple[dict[str, Any] | None, list[Path]]:
    """(release manifest or None, run directories) for a run dir, a runs root, or a release dir.

    A release directory is recognised by a `manifest.json` without `stats.json`; its runs are run
    directories below it or named by `run_dir` in its source entries (relative to the release).
    """
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: no such directory; give a run directory (runs/NAME), a runs root "
                        "or a release.")
    if is_run_dir(path):
        return None, [path]
    release = read_json(path / "manifest.json") if (path / "manifest.json").is_file() else None
    runs = {d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".") and is_run_dir(d)}
    runs |= {d for sub in ("runs",) if (path / sub).is_dir() for d in (path / sub).iterdir()
             if not d.name.startswith(".") and is_run_dir(d)}
    if release is not None:
        for entry in manifest_entries(release.get("sources", release.get("included"))):
            if entry.get("run_dir") and is_run_dir(path / str(entry["run_dir"])):
                runs.add(path / str(entry["run_dir"]))
    if release is None and not runs:
        raise UserError(f"{path}: no finished runs here (a run directory holds stats.json and "
                        "manifest.json); run a source with `roots run NAME` first.")
    return release, sorted(runs, key=lambda d: (d.name, str(d)))


def build_report(path: Path, out: Path | None = None, max_docs: int | None = None) -> Path:
    """Write `report.html` for a run directory, a runs root or a release directory; return its path.

    The default location is inside `path`, next to what it describes. The file is replaced atomically.
    `max_docs` caps the documents per run the per-document views are drawn from (None: REPORT_MAX_DOCS).
    """
    path = versions.resolve(Path(path))  # a release root (`release/`) means its latest release
    release, run_dirs = find_inputs(path)
    runs = [RunData.load(d, max_docs) for d in run_dirs]
    names = [r.name for r in runs]
    title = "roots report: " + (str(release.get("name", path.name)) if release is not None
                                else names[0] if len(names) == 1 else f"{len(names)} sources")
    target = Path(out) if out is not None else path / REPORT_NAME
    if target.is_dir():
        target = target / REPORT_NAME
    atomic_write_text(target, render(runs, release, title))
    return target
