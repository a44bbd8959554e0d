"""`report.html` as a data steward sees it: rendered by headless Chromium, not only parsed as a string.

tests/test_report.py checks the markup; this checks what a browser makes of it: every section the table
of contents links to exists and has a size on screen, every chart is drawn, the page attempts no network
request and logs no error (a Content-Security-Policy violation included), and a screenshot is kept in the
test's temporary directory for a person to look at.

Chromium is driven over the Chrome DevTools Protocol on a pipe (`--remote-debugging-pipe`: file
descriptors 3 and 4, no port, nothing listening), because the protocol reports the requests of the page
itself. `Network.requestWillBeSent` fires for every load the page attempts, even one its CSP then blocks,
so a regression in escaping is caught here even though the CSP would have stopped the load. A browser-wide
net log would also record Chromium's own background traffic and need filtering, and `--dump-dom` alone
cannot see requests. `test_network_check_is_not_vacuous` proves the detector fires on a page that does
reach out.

Chromium is a test dependency the Makefile's set-up installs (Debian package `chromium`); if it is missing
the tests fail and say how to install it, rather than skip and pass without having looked at the page.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from roots.core import workspace
from roots.governance import changes
from roots.jobs import merge
from roots.jobs.run import run_source
from roots.release import fertility
from roots.report import markup, page
from tests.conftest import udhr_paragraphs, vouch, write_card
from tests.test_report import _card, copy_hostile_sample

CHROMIUM_ENV = "ROOTS_CHROMIUM"  # a path to use instead of `chromium` on PATH
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--mute-audio", "--remote-debugging-pipe")
WIDTH, HEIGHT = 1400, 3000
TIMEOUT = 60.0
RUN_PARTS = ("run", "waterfall", "langid", "distributions", "samples", "duplicates", "pii", "quarantine")


def chromium_path() -> str:
    """The Chromium binary, or a test failure saying how to get it (never a skip: see the module doc)."""
    override = os.environ.get(CHROMIUM_ENV)
    found = override if override and os.access(override, os.X_OK) else None
    found = found or (None if override else shutil.which("chromium") or shutil.which("chromium-browser"))
    if not found:
        where = f"{CHROMIUM_ENV}={override} is not an executable" if override else "no `chromium` on PATH"
        pytest.fail(f"headless Chromium is needed to render the report ({where}). `make test` installs it "
                    "(Debian: `apt-get install -y chromium`); or point ROOTS_CHROMIUM at a Chromium binary.",
                    pytrace=False)
    return found


# ============================================================================================ CDP client
# Runs in the child: moves the two pipe ends to fds 3 and 4 (via fds >= 10, so neither overwrites the
# other), closes the rest, and becomes Chromium.
_FD_HELPER = """
import fcntl, os, sys
ends = [int(x) for x in sys.argv[1:3]]
high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in ends]
for target, fd in zip((3, 4), high):
    os.dup2(fd, target)
for fd in {*ends, *high} - {3, 4}:
    os.close(fd)
os.execv(sys.argv[3], sys.argv[3:])
"""


class CDP:
    """A minimal Chrome DevTools Protocol client over `--remote-debugging-pipe` (NUL-separated JSON).

    Every message that is not the answer being waited for is kept in `events`, in arrival order, so a
    test can look at all network and log events of the session afterwards.
    """

    def __init__(self, binary: str, profile: Path) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        cmd_r, self._cmd_w = os.pipe()  # our commands -> Chromium's fd 3
        self._res_r, res_w = os.pipe()  # Chromium's fd 4 -> our reader
        self.stderr_path = profile.parent / f"{profile.name}.stderr.txt"
        argv = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"]
        with self.stderr_path.open("wb") as err:
            # A tiny Python exec-helper puts the pipe ends on fds 3 and 4: subprocess cannot renumber fds,
            # and a preexec_fn is unsafe here (Beam leaves threads behind in the test process).
            self.proc = subprocess.Popen([sys.executable, "-c", _FD_HELPER, str(cmd_r), str(res_w), *argv],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                         pass_fds=(cmd_r, res_w))
        os.close(cmd_r)
        os.close(res_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._res_r], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError(f"Chromium did not answer in time; its stderr: {self.stderr_tail()}")
            chunk = os.read(self._res_r, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium closed the DevTools pipe; its stderr: {self.stderr_tail()}")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def wait_for(self, method: str, session: str | None = None, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The first event `method` (of `session`) not seen yet; earlier ones are looked up in `events`."""
        for event in self.events:
            if event.get("method") == method and event.get("sessionId") == session and not event.get("_seen"):
                event["_seen"] = True
                return event
        deadline = time.monotonic() + timeout
        while True:
            message = self._read(deadline)
            self.events.append(message)
            if message.get("method") == method and message.get("sessionId") == session:
                message["_seen"] = True
                return message

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._cmd_w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            answer = self._read(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"CDP {method} failed: {answer['error']}")
                return answer.get("result") or {}
            self.events.append(answer)

    def stderr_tail(self) -> str:
        lines = self.stderr_path.read_text(errors="replace").splitlines() if self.stderr_path.exists() else []
        return "\n".join(line for line in lines[-20:] if "dbus" not in line) or "(empty)"

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close")
                except (OSError, RuntimeError, TimeoutError):
                    pass
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()  # our own child, by handle
                    self.proc.wait()
        finally:
            for fd in (self._cmd_w, self._res_r):
                try:
                    os.close(fd)
                except OSError:
                    pass


@contextmanager
def chromium(profile: Path) -> Iterator[CDP]:
    cdp = CDP(chromium_path(), profile)
    try:
        yield cdp
    finally:
        cdp.close()


# ============================================================================================ rendering
_PAGE_FACTS = """(() => {
  const box = e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; };
  return {
    title: document.title,
    sections: Array.from(document.querySelectorAll('section[id]')).map(s => [s.id, ...box(s)]),
    links: Array.from(document.querySelectorAll('a[href^="#"]')).map(a => a.getAttribute('href').slice(1)),
    svgs: Array.from(document.querySelectorAll('svg')).map(box),
    scripts: document.scripts.length,
    height: document.documentElement.scrollHeight,
  };
})()"""


@dataclass
class Rendered:
    """What Chromium made of one page."""

    url: str
    dom: str
    facts: dict[str, Any]
    requests: list[str]
    problems: list[str]  # console/log entries at warning level or above (CSP violations, failed loads)
    screenshot: Path
    seconds: float
    sizes: dict[str, tuple[float, float]] = field(init=False)

    def __post_init__(self) -> None:
        self.sizes = {sid: (w, h) for sid, w, h in self.facts["sections"]}


def render(page_file: Path, out_dir: Path, shoot: tuple[str, ...] = ()) -> Rendered:
    """Load `page_file` in headless Chromium; return its DOM, layout facts, every request it attempted, every
    problem it logged, and a screenshot of the top `WIDTH` x `HEIGHT` pixels (saved in `out_dir`), plus
    one of each section whose id is in `shoot` wherever it is on the page (`<page>.<id>.png`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    url = page_file.resolve().as_uri()
    started = time.monotonic()
    with chromium(out_dir / "profile") as cdp:
        target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Network", "Page", "Log", "Runtime"):
            cdp.send(f"{domain}.enable", session=session)
        cdp.send("Emulation.setDeviceMetricsOverride", {"width": WIDTH, "height": HEIGHT,
                                                        "deviceScaleFactor": 1, "mobile": False},
                 session=session)
        nav = cdp.send("Page.navigate", {"url": url}, session=session)
        assert not nav.get("errorText"), nav
        cdp.wait_for("Page.loadEventFired", session)
        facts = cdp.send("Runtime.evaluate", {"expression": _PAGE_FACTS, "returnByValue": True},
                         session=session)["result"]["value"]
        dom = cdp.send("Runtime.evaluate", {"expression": "document.documentElement.outerHTML",
                                            "returnByValue": True}, session=session)["result"]["value"]
        shot = cdp.send("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        for sid in shoot:
            box = cdp.send("Runtime.evaluate", {"expression": "(() => { const r = document.getElementById("
                                                              f"{json.dumps(sid)}).getBoundingClientRect(); "
                                                              "return [r.x, r.y + window.scrollY, r.width, "
                                                              "r.height]; })()",
                                                "returnByValue": True}, session=session)["result"]["value"]
            clip = dict(zip(("x", "y", "width", "height"), box), scale=1)
            data = cdp.send("Page.captureScreenshot",
                            {"format": "png", "clip": clip, "captureBeyondViewport": True},
                            session=session)["data"]
            (out_dir / f"{page_file.stem}.{sid}.png").write_bytes(base64.b64decode(data))
        events = [e for e in cdp.events if e.get("sessionId") == session]
    png = out_dir / f"{page_file.stem}.png"
    png.write_bytes(base64.b64decode(shot))
    (out_dir / f"{page_file.stem}.dom.html").write_text(dom, encoding="utf-8")
    requests = [e["params"]["request"]["url"] for e in events
                if e.get("method") == "Network.requestWillBeSent"]
    problems = [f"{e['params']['entry'].get('source')}: {e['params']['entry'].get('text')}" for e in events
                if e.get("method") == "Log.entryAdded"
                and e["params"]["entry"].get("level") in ("warning", "error")]
    problems += [f"console.{e['params'].get('type')}" for e in events
                 if e.get("method") == "Runtime.consoleAPICalled"]
    problems += [f"exception: {e['params']}" for e in events if e.get("method") == "Runtime.exceptionThrown"]
    return Rendered(url, dom, facts, requests, problems, png, time.monotonic() - started)


def assert_renders_offline(page_file: Path, rendered: Rendered, expected_sections: list[str]) -> None:
    """The checks every report page must pass in the browser."""
    html = page_file.read_text(encoding="utf-8")
    # the only load is the page itself: no http(s), no other file, not even one the CSP blocked
    assert rendered.requests == [rendered.url], rendered.requests
    assert not rendered.problems, rendered.problems
    assert rendered.facts["scripts"] == 0
    missing = [s for s in expected_sections if s not in rendered.sizes]
    assert not missing, f"sections missing from the rendered page: {missing}"
    empty = [s for s in expected_sections if min(rendered.sizes[s]) <= 0]
    assert not empty, f"sections with no size on screen: {empty}"
    dangling = sorted({a for a in rendered.facts["links"] if a not in rendered.sizes})
    assert not dangling, f"table-of-contents links to no section: {dangling}"
    n_svg = len(re.findall(r"<svg\b", html))
    assert len(rendered.facts["svgs"]) == n_svg > 0
    assert all(w > 0 and h > 0 for w, h in rendered.facts["svgs"]), "a chart was not drawn"
    assert rendered.facts["title"].startswith("roots report")
    assert rendered.screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert rendered.screenshot.stat().st_size > 50_000  # a near-blank 1400x3000 page is about 20 kB


def run_sections(name: str) -> list[str]:
    a = markup.slug(name)
    return [f"src-{a}", *(f"{a}-{part}" for part in RUN_PARTS)]


# ============================================================================================ fixtures
@pytest.fixture(scope="module")
def release_ws(tmp_path_factory: pytest.TempPathFactory) -> tuple[workspace.Workspace, Path]:
    """Two sources run for real and merged (vocabulary 600): web_noisy with the hostile documents of
    tests/test_report.py, and UDHR articles in en, fr, zh and ja so fertility has both word units.

    Half of the documents are held out so every language has validation text to measure."""
    ws = changes.init_workspace(tmp_path_factory.mktemp("browser") / "ws")
    copy_hostile_sample(ws)
    (ws.sources_dir / "web_noisy.yaml").write_text(yaml.safe_dump(_card(["filter_remove_empty_docs"])))
    records = [{"id": f"{lang}{i}", "text": text, "url": f"https://udhr.example/{lang}/{i}"}
               for lang in ("en", "fr", "zh", "ja") for i, text in enumerate(udhr_paragraphs(lang, 6))]
    (ws.root / "udhr.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                                        encoding="utf-8")
    write_card(ws, "udhr_mini", "udhr.jsonl", data_extra=", id_field: id, url_field: url")
    config = yaml.safe_load(ws.config_path.read_text())
    config["normalise"] = {"max_chars": 3000}
    config["merge"] = {**(config.get("merge") or {}), "valid_fraction": 0.5}
    ws.config_path.write_text(yaml.safe_dump(config))
    vouch(ws, ws.config_path, ws.sources_dir / "web_noisy.yaml")
    for name in ("udhr_mini", "web_noisy"):
        run_source(ws, name)
    result = merge.merge(ws, vocab_size=600)
    manifest_path = result.out_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    measured = fertility.fertility_from_lineage(None, result.out_dir, {s["name"]: Path(s["run_dir"])
                                                                       for s in manifest["sources"]})
    if "fertility" in manifest:  # merge records it
        assert manifest["fertility"] == measured
    else:  # a merge that does not record it yet: add it, as merge will
        manifest["fertility"] = measured
        manifest_path.write_text(json.dumps(manifest, indent=2))
        page.build_report(result.out_dir)
    return ws, result.out_dir


# ============================================================================================ tests
def test_run_report_in_chromium(release_ws: tuple[workspace.Workspace, Path], tmp_path: Path) -> None:
    """A single run's report (web_noisy with hostile documents) renders with every section, offline."""
    ws, _ = release_ws
    out = page.build_report(ws.root / "runs" / "web_noisy", tmp_path / "run_report.html")
    rendered = render(out, tmp_path / "chromium")
    assert_renders_offline(out, rendered, ["overview", *run_sections("web_noisy")])
    # hostile documents arrive as text: their markup shows on screen and never became elements
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.dom
    assert "<img" not in rendered.dom.lower()
    print(f"\nrun report: {rendered.screenshot} ({rendered.facts['height']} px tall, "
          f"{rendered.seconds:.1f} s)")


def test_release_report_in_chromium(release_ws: tuple[workspace.Workspace, Path], tmp_path: Path) -> None:
    """The release report: release section with tokenizer fertility, then every source's sections."""
    _, rel = release_ws
    page_file = rel / "report.html"
    rendered = render(page_file, tmp_path / "chromium", shoot=("release-fertility",))
    manifest = json.loads((rel / "manifest.json").read_text())
    sources = [s["name"] for s in manifest["sources"]]
    assert sorted(sources) == ["udhr_mini", "web_noisy"]
    expected = ["release", "release-fertility", "overview",
                *(s for name in sources for s in run_sections(name))]
    assert_renders_offline(page_file, rendered, expected)
    fert = manifest["fertility"]
    assert {"en", "fr", "zh", "ja"} <= set(fert)
    assert fert["zh"]["word_unit"] == fert["ja"]["word_unit"] == "character"
    assert fert["en"]["word_unit"] == "whitespace"
    section = rendered.dom[rendered.dom.index('id="release-fertility"'):]
    for lang, entry in fert.items():
        assert f"<td>{entry['word_unit']}</td>" in section, lang
    assert "Tokens per word on held-out text" in section
    assert (tmp_path / "chromium" / "report.release-fertility.png").stat().st_size > 10_000
    print(f"\nrelease report: {rendered.screenshot} ({rendered.facts['height']} px tall, "
          f"{rendered.seconds:.1f} s)")


def test_fertility_matches_lineage(release_ws: tuple[workspace.Workspace, Path]) -> None:
    """Fertility's tokens are the held-out shards' tokens less one EOD per document: same documents,
    same text, same encoding as the shards."""
    _, rel = release_ws
    fert = json.loads((rel / "manifest.json").read_text())["fertility"]
    expected: dict[str, list[int]] = {}
    for path in sorted((rel / "lineage").glob(fertility.VALID_GLOB)):
        table = pq.read_table(path, columns=["lang", "tokens"])
        for lang in set(table.column("lang").to_pylist()):
            sub = table.filter(pc.equal(table.column("lang"), lang))
            expected[lang] = [sub.num_rows, int(pc.sum(sub.column("tokens")).as_py()) - sub.num_rows]
    assert {lang: [v["documents"], v["tokens"]] for lang, v in fert.items()} == expected
    for entry in fert.values():
        assert entry["tokens_per_word"] == round(entry["tokens"] / entry["words"], 4)
        assert entry["tokens_per_char"] == round(entry["tokens"] / entry["chars"], 4)


def test_network_check_is_not_vacuous(tmp_path: Path) -> None:
    """The same checks on a page that reaches out (one load its CSP blocks, one it allows) must fail."""
    page_file = tmp_path / "leaky.html"
    page_file.write_text("<!DOCTYPE html><html><head><title>roots report: leaky</title>"
                    "<meta http-equiv=\"Content-Security-Policy\" content=\"img-src data:\"></head><body>"
                    '<section id="overview"><img src="http://example.invalid/pixel.png">'
                    '<link rel="stylesheet" href="https://example.invalid/style.css"></section></body></html>')
    rendered = render(page_file, tmp_path / "chromium")
    assert "http://example.invalid/pixel.png" in rendered.requests  # blocked by the CSP, still seen
    assert "https://example.invalid/style.css" in rendered.requests  # allowed, failed (no network)
    assert any("Content Security Policy" in p for p in rendered.problems)
    with pytest.raises(AssertionError):
        assert_renders_offline(page_file, rendered, ["overview"])


def test_missing_chromium_fails_with_instructions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CHROMIUM_ENV, str(tmp_path / "no-chromium"))
    with pytest.raises(pytest.fail.Exception, match="make test.*apt-get install -y chromium"):
        chromium_path()
