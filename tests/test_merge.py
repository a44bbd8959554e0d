"""`roots merge` end to end: the clearance gate, takedowns, cross-source dedup, shards megatron-core reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from roots.governance import permissions
from roots.io import outputs
from roots.release import megatron
from roots.release import tokenizer as toklib
from tests.conftest import udhr_paragraphs, vouch, write_card


def jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    from roots.cli import app
    from roots.governance import changes

    ws = changes.init_workspace(tmp_path_factory.mktemp("merge") / "ws")
    en, fr = udhr_paragraphs("en", 6), udhr_paragraphs("fr", 4)
    jsonl(ws.root / "open.jsonl", [{"id": f"en{i}", "text": t, "url": f"https://a.example/en/{i}"}
                                   for i, t in enumerate(en[:4])] + [{"id": "fr0", "text": fr[0]}])
    # `shared` repeats open's en1 word for word and adds its own documents
    jsonl(ws.root / "shared.jsonl", [{"id": "copy", "text": en[1]}, {"id": "own", "text": en[4]},
                                     {"id": "fr1", "text": fr[1]}])
    jsonl(ws.root / "closed.jsonl", [{"id": "c", "text": en[5]}])
    jsonl(ws.root / "revoked.jsonl", [{"id": "r", "text": fr[2]}])
    extra = ", id_field: id, url_field: url"
    write_card(ws, "open", "open.jsonl", data_extra=extra)
    write_card(ws, "shared", "shared.jsonl", data_extra=extra)
    for name in ("closed", "revoked"):
        write_card(ws, name, f"{name}.jsonl", data_extra=extra)
        card = ws.sources_dir / f"{name}.yaml"
        card.write_text(card.read_text().replace("license: CC0-1.0", "license: proprietary"))
        vouch(ws, card)
    (ws.sources_dir / "dead.yaml").write_text(
        "name: dead\nlanguages: [en]\nlicense: CC0-1.0\ncustodian: {name: X}\n"
        "data: {path: open.jsonl, format: jsonl}\nstatus: {state: killed, reason: overlaps open}\n")
    vouch(ws, ws.sources_dir / "dead.yaml")
    rec = permissions.file_permission(ws, "revoked", granted_by="Owner", scope="training")
    assert app.main(["--workspace", str(ws.root), "run", "--all"]) == 0
    # revoked after its run: the next merge must still exclude it
    permissions.revoke(ws, rec.id, "owner withdrew")
    assert app.main(["--workspace", str(ws.root), "takedown", "add", "--source", "open", "--id", "en3",
                     "--reason", "author request"]) == 0
    assert app.main(["--workspace", str(ws.root), "merge", "--vocab-size", "600"]) == 0
    return ws, ws.root / "release" / "latest"


def lineage(rel: Path) -> list[dict]:
    rows = []
    for path in sorted((rel / "lineage").glob("*.parquet")):
        rows += [{**r, "shard": path.stem} for r in _read(path)]
    return rows


def _read(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def test_gate_excludes_and_names_sources(release):
    _, rel = release
    manifest = json.loads((rel / "manifest.json").read_text())
    included = {s["source"]: s for s in manifest["sources_included"]}
    excluded = {s["source"]: s["reason"] for s in manifest["sources_excluded"]}
    assert set(included) == {"open", "shared"}
    assert included["open"]["clearance"] == "licence policy (CC0-1.0)"
    assert "no permission record" in excluded["closed"]
    assert "revoked" in excluded["revoked"] and "owner withdrew" in excluded["revoked"]
    assert "killed: overlaps open" in excluded["dead"]
    sources = {row["source"] for row in lineage(rel)}
    assert sources == {"open", "shared"}


def test_takedown_and_cross_source_duplicates(release):
    _, rel = release
    manifest = json.loads((rel / "manifest.json").read_text())
    ids = {(r["source"], r["id"]) for r in lineage(rel)}
    assert ("open", "en3") not in ids and manifest["takedowns_applied"] == 1
    assert [t["documents_removed"] for t in manifest["takedowns"]] == [1]  # which takedown removed what
    assert manifest["sources_included"][0]["removed_at_merge"] == {"takedown": 1}
    # en1 is in both sources: exactly one copy, the one from `open` (name sorts first, both policy-cleared)
    assert ("open", "en1") in ids and ("shared", "copy") not in ids
    shared = next(s for s in manifest["sources_included"] if s["source"] == "shared")
    assert shared["removed_at_merge"] == {"cross_source_duplicate": 1}
    assert len(ids) == 6  # open: en0, en1, en2, fr0 ; shared: own, fr1


def test_shards_read_back_with_megatron_core(release):
    ws, rel = release
    pytest.importorskip("torch")
    from megatron.core.datasets.indexed_dataset import (
        IndexedDataset as CoreIndexedDataset,
    )

    tok = toklib.load(rel / "tokenizer.json")
    texts = {}
    for name in ("open", "shared"):
        for row in outputs.read_kind(ws.root / "runs" / name, "kept").to_pylist():
            texts[(name, row["id"])] = row["text"]
    checked = 0
    for path in sorted((rel / "lineage").glob("*.parquet")):
        prefix = str(rel / "shards" / path.stem)
        core = CoreIndexedDataset(prefix)
        ours = megatron.IndexedDataset(prefix, verify=True)
        rows = _read(path)
        assert len(core) == len(ours) == len(rows)
        for i, row in enumerate(rows):
            expected = tok.encode(texts[(row["source"], row["id"])]).ids + [toklib.eod_id(tok)]
            assert row["document_index"] == i and row["tokens"] == len(expected)
            assert np.array_equal(core[i], np.array(expected)), (row["source"], row["id"])
            assert np.array_equal(ours[i], np.array(expected))
            checked += 1
    assert checked == 6
    assert megatron.IndexedDataset(str(rel / "shards" / "en_text_document")).dtype == np.uint16  # vocab 600


def test_blend_tokenizer_and_manifest_hashes(release):
    _, rel = release
    blend = json.loads((rel / "blend.json").read_text())
    assert abs(sum(blend["weights"].values()) - 1) < 1e-6
    assert blend["data_path"].split()[1].startswith("shards/")
    per_split = json.loads((rel / "per_split_data_args.json").read_text())
    assert per_split["train"][1::2] == [f"shards/{g}_text_document" for g in sorted(blend["weights"])]
    manifest = json.loads((rel / "manifest.json").read_text())
    import hashlib

    for rel_path, digest in manifest["files_sha256"].items():
        assert hashlib.sha256((rel / rel_path).read_bytes()).hexdigest() == digest
    assert "tokenizer.json" in manifest["files_sha256"] and manifest["tokenizer"]["eod_id"] == 2
    transformers = pytest.importorskip("transformers")
    fast = transformers.PreTrainedTokenizerFast(tokenizer_file=str(rel / "tokenizer.json"))
    assert fast.convert_tokens_to_ids(["<unk>", "<s>", "</s>", "<pad>"]) == [0, 1, 2, 3]


def test_merge_is_reproducible(release):
    from roots.cli import app

    ws, rel = release
    before = {p.name: p.read_bytes() for p in (rel / "shards").iterdir()}
    assert app.main(["--workspace", str(ws.root), "merge", "--vocab-size", "600", "--out",
                     str(ws.root / "release2")]) == 0
    after = {p.name: p.read_bytes() for p in (ws.root / "release2" / "shards").iterdir()}
    assert before == after


def test_merge_user_errors(ws, run_cli):
    rc, _, err = run_cli("--workspace", str(ws.root), "merge")
    assert rc == 2 and "no source may enter a release" in err
    rc, _, err = run_cli("--workspace", str(ws.root), "takedown", "add", "--source", "nope", "--id", "x",
                         "--reason", "r")
    assert rc == 2 and "unknown source" in err


def test_fertility_counted_while_tokenising_equals_the_lineage_measure(release):
    # Half the documents held out, with a takedown and a cross-source duplicate dropped at merge time: the
    # per-language sums the tokenisation records must equal a fresh pass over the release's lineage.
    import yaml

    from roots.jobs import merge
    from roots.release import fertility

    ws, _ = release
    original = ws.config_path.read_text()
    config = yaml.safe_load(original)
    config["merge"] = {**(config.get("merge") or {}), "valid_fraction": 0.5}
    try:
        ws.config_path.write_text(yaml.safe_dump(config))
        vouch(ws, ws.config_path)
        result = merge.merge(ws, out=ws.root / "release-fertility", vocab_size=600)
    finally:
        ws.config_path.write_text(original)
        vouch(ws, ws.config_path)
    manifest = result.manifest
    measured = fertility.fertility_from_lineage(None, result.out_dir, {s["name"]: Path(s["run_dir"])
                                                                       for s in manifest["sources"]})
    assert manifest["fertility"] == measured
    assert sum(s["documents"] for s in measured.values()) >= 2 and set(measured) <= {"en", "fr"}
    valid_docs = sum(1 for r in lineage(result.out_dir) if r["shard"].endswith("_valid_text_document"))
    assert sum(s["documents"] for s in measured.values()) == valid_docs


def test_merge_removes_exact_copies_within_a_source_as_a_safety_net(ws, run_cli):
    """A run with exact dedup switched off keeps two copies of a page; the merge keeps one (the lowest
    id) and counts the other, unless `merge.within_source_exact_dedup` is off."""
    en = udhr_paragraphs("en", 4)
    docs = [{"id": f"en{i}", "text": t} for i, t in enumerate(en)] + [{"id": "zz-copy", "text": en[1]}]
    (ws.root / "copies.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    write_card(ws, "copies", "copies.jsonl", data_extra=", id_field: id",
               extra="recipe: {skip: [dedup]}\n")
    assert run_cli("--workspace", str(ws.root), "run", "copies")[0] == 0
    assert run_cli("--workspace", str(ws.root), "merge", "--vocab-size", "600")[0] == 0
    manifest = json.loads((ws.root / "release" / "latest" / "manifest.json").read_text())
    assert manifest["sources_included"][0]["removed_at_merge"] == {"within_source_duplicate": 1}
    import pyarrow.parquet as pq

    ids = [i for path in sorted((ws.root / "release" / "latest" / "lineage").glob("*.parquet"))
           for i in pq.read_table(path, columns=["id"]).column("id").to_pylist()]
    assert "en1" in ids and "zz-copy" not in ids
    (ws.root / "roots.yaml").write_text("merge: {within_source_exact_dedup: false}\n")
    vouch(ws, ws.root / "roots.yaml")
    assert run_cli("--workspace", str(ws.root), "merge", "--vocab-size", "600", "--out",
                   str(ws.root / "release-all"))[0] == 0
    manifest = json.loads((ws.root / "release-all" / "manifest.json").read_text())
    assert manifest["sources_included"][0]["removed_at_merge"] == {}
