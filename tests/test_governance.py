from __future__ import annotations

import datetime as dt
import json

import pytest

from roots.governance import audit, catalogue, clearance, permissions


def register(run_cli, ws, name, lic):
    rc, _, err = run_cli("--workspace", str(ws.root), "source", "add", name, "--path", "d.jsonl", "--format",
                         "jsonl", "--license", lic, "--custodian", "Owner")
    assert rc == 0, err


def decisions(ws, today=None):
    out = clearance.clearance(ws, catalogue.load_all(ws), today=today)
    return {(d.source, d.scope): d for d in out}


def test_policy_clears_open_licenses_and_not_others(run_cli, ws):
    register(run_cli, ws, "open", "CC0-1.0")
    register(run_cli, ws, "nc", "CC-BY-NC-4.0")
    register(run_cli, ws, "closed", "proprietary")
    d = decisions(ws)
    assert d[("open", "training")].cleared and "licence policy (CC0-1.0)" in d[("open", "training")].basis
    assert d[("nc", "training")].cleared and not d[("nc", "release")].cleared
    assert not d[("closed", "training")].cleared
    assert "no permission record" in d[("closed", "training")].basis


def test_unknown_license_reason(run_cli, ws):
    register(run_cli, ws, "odd", "Artistic-2.0")
    d = decisions(ws)[("odd", "training")]
    assert not d.cleared and "unknown to the policy" in d.basis


def test_permission_clears_then_expires_then_revoked(run_cli, ws, tmp_path):
    register(run_cli, ws, "press", "proprietary")
    evidence = tmp_path / "agreement.txt"
    evidence.write_text("We agree. -- Le Journal")
    rc, out, err = run_cli("--workspace", str(ws.root), "permission", "file", "press",
                           "--granted-by", "A. Editor",
                           "--scope", "training", "--expires", "2030-12-31", "--evidence", str(evidence),
                           "--role", "editor", "--organisation", "Le Journal")
    assert rc == 0, err
    rec = permissions.list_records(ws, "press")[0]
    assert rec.data["evidence"]["sha256"] == audit.sha256_file(evidence)
    assert (ws.root / rec.data["evidence"]["file"]).read_text() == evidence.read_text()
    d = decisions(ws, today=dt.date(2027, 1, 1))
    assert d[("press", "training")].cleared and d[("press", "training")].record == rec.id
    assert not d[("press", "release")].cleared
    # after the expiry date
    d = decisions(ws, today=dt.date(2031, 1, 1))
    assert not d[("press", "training")].cleared and "expired on 2030-12-31" in d[("press", "training")].basis
    # revoked: the grant file is untouched, a new record points at it
    before = rec.path.read_text()
    rc, out, err = run_cli("--workspace", str(ws.root), "permission", "revoke", rec.id,
                           "--reason", "owner asked")
    assert rc == 0, err
    assert rec.path.read_text() == before
    assert len(permissions.list_records(ws, "press")) == 2
    d = decisions(ws, today=dt.date(2027, 1, 1))
    assert not d[("press", "training")].cleared and "revoked" in d[("press", "training")].basis
    rc, out, _ = run_cli("--workspace", str(ws.root), "permission", "list", "press")
    assert rc == 0 and "revokes" in out
    rc, out, _ = run_cli("--workspace", str(ws.root), "clearance", "press")
    assert rc == 0 and "revoked" in out
    rc, _, err = run_cli("--workspace", str(ws.root), "permission", "revoke", rec.id, "--reason", "again")
    assert rc == 2 and "already revoked" in err


def test_killed_source_never_cleared(ws):
    (ws.sources_dir / "k.yaml").write_text(
        "name: k\nlanguages: [en]\nlicense: CC0-1.0\ncustodian: {name: X}\n"
        "data: {path: x.jsonl, format: jsonl}\nstatus: {state: killed, reason: included in s2orc}\n")
    d = decisions(ws)[("k", "training")]
    assert not d.cleared and "killed: included in s2orc" in d.basis


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--expires", "31/12/2030"], "not a valid date"),
        (["--evidence", "/no/such/file.pdf"], "file /no/such/file.pdf not found"),
        (["--scope", "marketing"], "not a scope"),
    ],
)
def test_permission_errors(run_cli, ws, extra, needle):
    register(run_cli, ws, "s", "proprietary")
    args = ["--workspace", str(ws.root), "permission", "file", "s", "--granted-by", "X"]
    if "--scope" not in extra:
        args += ["--scope", "training"]
    rc, _, err = run_cli(*args, *extra)
    assert rc == 2 and needle in err and "Traceback" not in err


def test_permission_for_unknown_source(run_cli, ws):
    rc, _, err = run_cli("--workspace", str(ws.root), "permission", "file", "ghost", "--granted-by", "X",
                         "--scope", "training")
    assert rc == 2 and "unknown source 'ghost'" in err


def test_audit_trail_detects_tampering(run_cli, ws):
    register(run_cli, ws, "a", "proprietary")
    run_cli("--workspace", str(ws.root), "permission", "file", "a", "--granted-by", "X",
            "--scope", "training")
    run_cli("--workspace", str(ws.root), "permission", "file", "a", "--granted-by", "Y", "--scope", "release")
    rc, out, _ = run_cli("--workspace", str(ws.root), "governance", "verify")
    assert rc == 0 and "intact" in out
    lines = ws.audit_path.read_text().splitlines()
    assert len(lines) == 4  # init + source add + two permission records
    # 1) edit an entry
    entry = json.loads(lines[2])
    entry["actor"] = "mallory"
    ws.audit_path.write_text("\n".join([*lines[:2], json.dumps(entry), lines[3]]) + "\n")
    rc, _, err = run_cli("--workspace", str(ws.root), "governance", "verify")
    assert rc == 1 and "edited" in err
    # 2) delete an entry
    ws.audit_path.write_text("\n".join([*lines[:2], lines[3]]) + "\n")
    rc, _, err = run_cli("--workspace", str(ws.root), "governance", "verify")
    assert rc == 1 and ("deleted" in err or "chain broken" in err)
    # 3) restore the trail, then edit a permission record by hand
    ws.audit_path.write_text("\n".join(lines) + "\n")
    rec = permissions.list_records(ws, "a")[0]
    rec.path.write_text(rec.path.read_text() + "expires: 2099-01-01\n")
    rc, _, err = run_cli("--workspace", str(ws.root), "governance", "verify")
    assert rc == 1 and "edited outside roots" in err
    # 4) delete it
    rec.path.unlink()
    rc, _, err = run_cli("--workspace", str(ws.root), "governance", "verify")
    assert rc == 1 and "deleted outside roots" in err
