"""Resumable batches: up-to-date sources are skipped, a SIGKILLed run leaves nothing that looks finished."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from roots.cli.run_cmds import source_state
from roots.governance import catalogue
from tests.bench.bench import generate_corpus
from tests.conftest import udhr_paragraphs, write_card


def test_run_all_skips_up_to_date_and_reruns_changed(ws, run_cli):
    (ws.root / "a.jsonl").write_text(json.dumps({"text": udhr_paragraphs("en", 1)[0]}) + "\n")
    write_card(ws, "a", "a.jsonl")
    rc, out, _ = run_cli("--workspace", str(ws.root), "run", "--all")
    assert rc == 0 and "running a" in out
    rc, out, _ = run_cli("--workspace", str(ws.root), "run", "--all")
    assert rc == 0 and "a: up to date" in out and "running a" not in out
    assert source_state(ws, catalogue.load_card(ws, "a"))[0] == "finished"
    # the input changes: the source is stale and runs again
    (ws.root / "a.jsonl").write_text(json.dumps({"text": udhr_paragraphs("fr", 1)[0]}) + "\n")
    assert source_state(ws, catalogue.load_card(ws, "a"))[0] == "stale"
    rc, out, _ = run_cli("--workspace", str(ws.root), "run", "--all")
    assert "running a" in out
    # so does a configuration change
    (ws.root / "roots.yaml").write_text("thresholds: {default: {number_words_min: 3}}\n")
    rc, out, _ = run_cli("--workspace", str(ws.root), "run", "--all")
    assert "running a" in out
    rc, out, _ = run_cli("--workspace", str(ws.root), "run", "--all", "--force")
    assert "running a" in out


def test_sigkill_mid_run_leaves_no_finished_output(ws, run_cli):
    docs = generate_corpus(6000)
    (ws.root / "big.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    write_card(ws, "big", "big.jsonl")
    env = {**os.environ, "ROOTS_WORKSPACE": str(ws.root)}
    proc = subprocess.Popen([sys.executable, "-m", "roots", "run", "big"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    runs = ws.root / "runs"
    deadline = time.time() + 60
    while time.time() < deadline and not list(runs.glob(".big.tmp-*/.pid")):
        time.sleep(0.1)
    time.sleep(2.0)  # well inside the pipeline
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (runs / "big").exists()
    card = catalogue.load_card(ws, "big")
    assert source_state(ws, card)[0] == "failed"
    rc, out, err = run_cli("--workspace", str(ws.root), "run", "big")
    assert rc == 0, err
    stats = json.loads((runs / "big" / "stats.json").read_text())
    assert stats["documents"]["input"] == 6000
    assert not list(runs.glob(".big.tmp-*"))
    assert source_state(ws, card)[0] == "finished"
    rc, out, _ = run_cli("--workspace", str(ws.root), "status")
    assert "big" in out and "finished" in out
