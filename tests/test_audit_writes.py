"""The audit trail under real conditions (issue 17, item 5), with real processes: 20 concurrent
`roots permission file` never fork the chain, and a full disk at any step leaves the whole change or
nothing, with a clear message, never a live record without its audit entry."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap

import pytest
import yaml

from tests.conftest import REPO

CLI = [sys.executable, "-m", "roots.cli.app"]


def roots(ws, *argv: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """`roots ARGV` in a fresh interpreter (from this tree), after running `prelude` in it."""
    if not prelude:
        return subprocess.run([*CLI, "--workspace", str(ws.root), *argv], cwd=REPO, capture_output=True,
                              text=True, timeout=120, check=False)
    code = prelude + "\nfrom roots.cli import app\nsys.exit(app.main(sys.argv[1:]))\n"
    return subprocess.run([sys.executable, "-c", code, "--workspace", str(ws.root), *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)


def add_source(ws, name: str = "press") -> None:
    """Registered in this process (the commands under test run in their own)."""
    from roots.cli import app

    (ws.root / "d.jsonl").write_text(json.dumps({"text": "x"}) + "\n")
    assert app.main(["--workspace", str(ws.root), "source", "add", name, "--path", "d.jsonl", "--format",
                     "jsonl", "--license", "proprietary", "--custodian", "Tests"]) == 0


@pytest.mark.parametrize("trial", range(3))
def test_20_concurrent_permission_files_never_fork_the_chain(ws, run_cli, trial):
    add_source(ws)
    before = len(ws.audit_path.read_text().splitlines())
    procs = [subprocess.Popen([*CLI, "--workspace", str(ws.root), "permission", "file", "press",
                               "--granted-by", f"Owner {i}", "--scope", "training"],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(20)]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert all(rc == 0 for _, _, rc in results), [err for _, err, rc in results if rc]
    lines = ws.audit_path.read_text().splitlines()
    assert len(lines) == before + 20
    entries = [json.loads(line) for line in lines]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(entries))
    assert len(list((ws.permissions_dir / "press").glob("*.yaml"))) == 20
    rc, _, err = run_cli("--workspace", str(ws.root), "governance", "verify")
    assert rc == 0, err
    rc, out, _ = run_cli("--workspace", str(ws.root), "permission", "list", "press")
    assert all(f"Owner {i}" in out for i in range(20))


FULL_DISK = textwrap.dedent("""
    import errno, os, sys
    TARGET = {target!r}
    def hits(fd):
        try:
            return os.readlink(f"/proc/self/fd/{{fd}}").endswith(TARGET)
        except OSError:
            return False
    def full(*_):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    real_write, real_fsync = os.write, os.fsync
    def write(fd, data):
        if {mode!r} == "write" and hits(fd):
            real_write(fd, bytes(data)[:len(data) // 2])  # half the line reaches the disk, then it is full
            full()
        return real_write(fd, data)
    def fsync(fd):
        if {mode!r} == "fsync" and hits(fd):
            full()
        return real_fsync(fd)
    os.write, os.fsync = write, fsync
""")


@pytest.mark.parametrize("target, mode, with_evidence", [
    ("audit.jsonl", "write", True), ("audit.jsonl", "fsync", True),  # the audit entry
    (".tmp", "fsync", True),  # the evidence copy (the first temporary file written)
    (".tmp", "fsync", False),  # the record itself
])
def test_a_full_disk_during_permission_file_leaves_nothing(ws, run_cli, tmp_path, target, mode,
                                                           with_evidence):
    """Whether the disk fills while the evidence or the record is written (`.tmp`: their temporary files),
    or while the audit entry is appended (half a line written, or the flush refused), nothing is left: no
    record, no copied evidence, no partial audit line, and the source stays uncleared."""
    add_source(ws)
    trail = ws.audit_path.read_bytes()
    evidence = tmp_path / "agreement.txt"
    evidence.write_text("signed")
    extra = ["--evidence", str(evidence)] if with_evidence else []
    proc = roots(ws, "permission", "file", "press", "--granted-by", "Owner", "--scope", "training", *extra,
                 prelude=FULL_DISK.format(target=target, mode=mode))
    assert proc.returncode == 1 and "the disk is full" in proc.stderr and "Traceback" not in proc.stderr
    assert "Nothing was recorded" in proc.stderr or "not recorded" in proc.stderr
    assert ws.audit_path.read_bytes() == trail
    assert not list(ws.permissions_dir.rglob("*.yaml"))
    assert not [p for p in ws.evidence_dir.iterdir() if p.name != ".gitkeep"]
    w = str(ws.root)
    assert run_cli("--workspace", w, "governance", "verify")[0] == 0
    cleared = json.loads(run_cli("--workspace", w, "clearance", "press", "--json")[1])
    assert not any(d["cleared"] for d in cleared)
    # with space again, the same command works
    assert run_cli("--workspace", w, "permission", "file", "press", "--granted-by", "Owner",
                   "--scope", "training", *extra)[0] == 0
    assert run_cli("--workspace", w, "governance", "verify")[0] == 0


def test_a_full_disk_during_a_policy_change_leaves_the_policy_as_it_was(ws, run_cli):
    before = ws.policy_path.read_bytes()
    trail = ws.audit_path.read_bytes()
    proc = roots(ws, "policy", "allow", "proprietary", "--scope", "training", "--reason", "in-house",
                 prelude=FULL_DISK.format(target="audit.jsonl", mode="fsync"))
    assert proc.returncode == 1 and "the disk is full" in proc.stderr and "undone" in proc.stderr
    assert ws.policy_path.read_bytes() == before and ws.audit_path.read_bytes() == trail
    assert run_cli("--workspace", str(ws.root), "governance", "verify")[0] == 0


def test_the_lock_file_and_left_over_temporaries_are_not_governed_files(ws):
    """The lock beside the trail, and a temporary file a killed write left, are neither records nor
    reasons for `verify` to fail; a real file placed by hand is."""
    add_source(ws)
    assert (ws.governance_dir / ".audit.lock").exists()
    (ws.permissions_dir / "press").mkdir(parents=True, exist_ok=True)
    (ws.permissions_dir / "press" / ".x.yaml.123.abc.tmp").write_text("half")
    assert roots(ws, "governance", "verify").returncode == 0
    (ws.permissions_dir / "press" / ".hidden.yaml").write_text("id: x\n")
    proc = roots(ws, "governance", "verify")
    assert proc.returncode == 1 and ".hidden.yaml: not recorded" in proc.stderr


def test_concurrent_policy_changes_lose_nothing(ws, run_cli):
    """Ten `roots policy allow` at once, each reading, changing and writing the same policy file: every
    change is in the file and in the trail (the lock covers the whole change, not only the append)."""
    procs = [subprocess.Popen([*CLI, "--workspace", str(ws.root), "policy", "allow", f"LicenseRef-{i}",
                               "--scope", "training", "--reason", f"change {i}"],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(10)]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert all(rc == 0 for _, _, rc in results), [err for _, err, rc in results if rc]
    clears = yaml.safe_load(ws.policy_path.read_text())["clears"]
    assert all(clears.get(f"LicenseRef-{i}") == ["training"] for i in range(10))
    assert run_cli("--workspace", str(ws.root), "governance", "verify")[0] == 0
