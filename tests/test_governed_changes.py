"""Governed changes (issue 17, item 3), through the CLI: the changes a steward makes are commands that
leave `governance verify` passing and say who and why; a hand edit makes merge and publish refuse until
it is accepted (or forced, which is recorded)."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import udhr_paragraphs


def entries(ws) -> list[dict]:
    return [json.loads(line) for line in ws.audit_path.read_text().splitlines()]


def verify_ok(run_cli, ws) -> None:
    rc, out, err = run_cli("--workspace", str(ws.root), "governance", "verify")
    assert rc == 0 and "intact" in out, err


def add_source(run_cli, ws, name: str, lic: str, n: int = 3) -> None:
    docs = [{"id": f"{name}{i}", "text": t} for i, t in enumerate(udhr_paragraphs("en", n))]
    (ws.root / f"{name}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    rc, _, err = run_cli("--workspace", str(ws.root), "source", "add", name, "--path", f"{name}.jsonl",
                         "--format", "jsonl", "--license", lic, "--custodian", "Tests", "--language", "en",
                         "--id-field", "id")
    assert rc == 0, err


def cleared(run_cli, ws, name: str) -> dict[str, bool]:
    rc, out, err = run_cli("--workspace", str(ws.root), "clearance", name, "--json")
    assert rc == 0, err
    return {d["scope"]: d["cleared"] for d in json.loads(out)}


def test_policy_allow_and_deny_are_audited_and_verify_passes(run_cli, ws):
    w = str(ws.root)
    add_source(run_cli, ws, "nc", "CC-BY-NC-4.0")
    assert cleared(run_cli, ws, "nc") == {"training": True, "release": False}
    rc, out, err = run_cli("--workspace", w, "policy", "allow", "CC-BY-NC-4.0", "--scope", "release",
                           "--reason", "counsel cleared NC sharing for research", "--by", "S. Teward")
    assert rc == 0 and "now clears training, release" in out, err
    verify_ok(run_cli, ws)
    assert cleared(run_cli, ws, "nc") == {"training": True, "release": True}
    last = entries(ws)[-1]
    assert last["action"] == "policy.allow" and last["actor"] == "S. Teward"
    assert last["details"]["reason"] == "counsel cleared NC sharing for research"
    assert "governance/policy.yaml" in last["files"]

    rc, _, err = run_cli("--workspace", w, "policy", "deny", "CC-BY-NC-4.0", "--reason", "withdrawn")
    assert rc == 0, err
    verify_ok(run_cli, ws)
    assert cleared(run_cli, ws, "nc") == {"training": False, "release": False}
    assert "CC-BY-NC-4.0" not in yaml.safe_load(ws.policy_path.read_text())["clears"]
    # a licence that always needs a permission: allowing it takes it off that list, or it would do nothing
    add_source(run_cli, ws, "prop", "proprietary")
    assert run_cli("--workspace", w, "policy", "allow", "proprietary", "--scope", "training",
                   "--reason", "in-house data")[0] == 0
    assert cleared(run_cli, ws, "prop")["training"] is True
    verify_ok(run_cli, ws)
    # who and why are required; a scope that is not one is refused; nothing changes
    before = ws.policy_path.read_bytes()
    with pytest.raises(SystemExit) as exc:  # argparse: a required option missing is exit 2
        run_cli("--workspace", w, "policy", "allow", "MIT", "--scope", "training")
    assert exc.value.code == 2
    rc, _, err = run_cli("--workspace", w, "policy", "allow", "MIT", "--scope", "everything", "--reason", "x")
    assert rc == 2 and "not a scope" in err
    rc, _, err = run_cli("--workspace", w, "policy", "allow", "MIT", "--scope", "training", "--reason", " ")
    assert rc == 2 and "--reason must say why" in err
    assert ws.policy_path.read_bytes() == before


def test_source_kill_revive_and_config_set_are_audited(run_cli, ws):
    w = str(ws.root)
    add_source(run_cli, ws, "open", "CC0-1.0")
    rc, _, err = run_cli("--workspace", w, "source", "kill", "open", "--reason", "overlaps the crawl")
    assert rc == 0, err
    verify_ok(run_cli, ws)
    rc, out, _ = run_cli("--workspace", w, "clearance", "open")
    assert "source killed: overlaps the crawl" in out
    assert run_cli("--workspace", w, "source", "kill", "open", "--reason", "again")[0] == 2
    assert run_cli("--workspace", w, "source", "revive", "open", "--reason", "overlap removed")[0] == 0
    assert cleared(run_cli, ws, "open") == {"training": True, "release": True}
    verify_ok(run_cli, ws)

    rc, out, err = run_cli("--workspace", w, "config", "set", "thresholds.en.number_words_min", "5",
                           "--reason", "short articles", "--by", "Op")
    assert rc == 0 and "= 5" in out, err
    assert yaml.safe_load(ws.config_path.read_text())["thresholds"] == {"en": {"number_words_min": 5}}
    assert entries(ws)[-1]["details"] == {"old": None, "new": 5, "reason": "short articles"}
    assert run_cli("--workspace", w, "config", "set", "merge.valid_fraction", "0.1", "--reason", "x")[0] == 0
    verify_ok(run_cli, ws)
    # keys and types are checked before anything is written
    before = ws.config_path.read_bytes()
    for key, value, needle in (("merge.valid_fraction", "[1]", "must be a number"),
                               ("merge.bogus", "1", "not a merge setting"),
                               ("thresholds.en.bogus_min", "1", "unknown threshold key"),
                               ("langid.batch_size", "many", "whole number"),
                               ("runs_dir", "[a, b]", "`runs_dir` must be"),
                               ("nonsense", "1", "unknown key")):
        rc, _, err = run_cli("--workspace", w, "config", "set", key, value, "--reason", "x")
        assert rc == 2 and needle in err and "Traceback" not in err, (key, err)
    assert ws.config_path.read_bytes() == before
    verify_ok(run_cli, ws)


def test_hand_edit_makes_merge_and_publish_refuse_until_accepted(run_cli, ws, tmp_path):
    w = str(ws.root)
    add_source(run_cli, ws, "open", "CC0-1.0")
    assert run_cli("--workspace", w, "run", "open")[0] == 0
    # the steward edits the policy by hand instead of using `roots policy`
    ws.policy_path.write_text(ws.policy_path.read_text() + "# cleared by phone\n")
    rc, _, err = run_cli("--workspace", w, "governance", "verify")
    assert rc == 1 and "policy.yaml" in err
    rc, _, err = run_cli("--workspace", w, "merge", "--vocab-size", "600")
    assert rc == 1 and "merge refused" in err and "policy.yaml" in err and "governance accept" in err
    rc, _, err = run_cli("--workspace", w, "publish", "open", "--out", str(tmp_path / "pub"))
    assert rc == 1 and "publish refused" in err and "policy.yaml" in err
    assert not (ws.root / "release").exists() and not (tmp_path / "pub").exists()
    rc, _, err = run_cli("--workspace", w, "clearance")
    assert "warning" in err and "verify" in err
    # --force runs anyway, and says so in the trail with the findings
    rc, _, err = run_cli("--workspace", w, "publish", "open", "--out", str(tmp_path / "forced"),
                         "--force", "release deadline; policy comment only")
    assert rc == 0, err
    forced = entries(ws)[-1]
    assert forced["action"] == "publish.force" and "policy.yaml" in forced["details"]["problems"][0]
    assert forced["details"]["reason"] == "release deadline; policy comment only"
    # accepting the edit makes the workspace trustworthy again
    rc, out, err = run_cli("--workspace", w, "governance", "accept", "governance/policy.yaml",
                           "--reason", "comment added by the steward", "--by", "S. Teward")
    assert rc == 0 and "accepted governance/policy.yaml" in out, err
    verify_ok(run_cli, ws)
    rc, _, err = run_cli("--workspace", w, "publish", "open", "--out", str(tmp_path / "pub"))
    assert rc == 0, err
    rc, _, err = run_cli("--workspace", w, "merge", "--vocab-size", "600")
    assert rc == 0, err
    manifest = json.loads((ws.root / "release" / "latest" / "manifest.json").read_text())
    assert manifest["audit_head"]["entries"] == len(entries(ws))
    verify_ok(run_cli, ws)


def test_accept_checks_what_it_accepts(run_cli, ws, tmp_path):
    w = str(ws.root)
    add_source(run_cli, ws, "open", "CC0-1.0")
    card = ws.sources_dir / "open.yaml"
    good = card.read_text()
    card.write_text(good.replace("license: CC0-1.0", "license: [CC0-1.0, MIT]"))
    rc, _, err = run_cli("--workspace", w, "governance", "accept", str(card), "--reason", "x")
    assert rc == 2 and "not valid" in err and "license" in err
    card.write_text(good)
    rc, _, err = run_cli("--workspace", w, "governance", "accept", str(card), "--reason", "x")
    assert rc == 2 and "unchanged" in err
    (tmp_path / "elsewhere.yaml").write_text("a: 1\n")
    rc, _, err = run_cli("--workspace", w, "governance", "accept", str(tmp_path / "elsewhere.yaml"),
                         "--reason", "x")
    assert rc == 2 and "not inside the workspace" in err
    (ws.root / "notes.yaml").write_text("a: 1\n")
    rc, _, err = run_cli("--workspace", w, "governance", "accept", "notes.yaml", "--reason", "x")
    assert rc == 2 and "not a file roots governs" in err
    # a deleted card can be accepted as deleted: verify passes, and the source is gone
    card.unlink()
    assert run_cli("--workspace", w, "governance", "verify")[0] == 1
    assert run_cli("--workspace", w, "governance", "accept", "sources/open.yaml", "--reason",
                   "source withdrawn, card removed")[0] == 0
    verify_ok(run_cli, ws)
    # a command refuses to build on a hand edit: accept (or restore) it first
    ws.config_path.write_text(ws.config_path.read_text() + "shards: 2\n")
    rc, _, err = run_cli("--workspace", w, "config", "set", "shards", "3", "--reason", "x")
    assert rc == 2 and "changed outside roots" in err and "governance accept roots.yaml" in err
