"""Dedup through `roots run` with two workers: copies across input files are caught, shared boilerplate is not
a duplicate, and the outcome does not depend on the worker count or on the number of key spill buckets."""

from __future__ import annotations

import json

from roots.io import outputs, spill
from tests.conftest import udhr_paragraphs, write_card

BOILERPLATE = ("Home | News | Sport | Weather | Contact us | Subscribe to our newsletter\n"
               "Cookies help us deliver our services. By using our services, you agree to our use of "
               "cookies.\n"
               "Copyright 2024 Example Media Group. All rights reserved. Terms of use and privacy policy.")


def change_words(text: str, n: int) -> str:
    words = text.split()
    for i in range(n):
        words[7 * i + 3] = "CHANGED"
    return " ".join(words)


def run(ws, run_cli, out: str, workers: int, source: str = "dups") -> tuple[dict, dict]:
    args = ["--workspace", str(ws.root), "run", source, "--out", str(ws.root / out), "--",
            f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    rc, _, err = run_cli(*args)
    assert rc == 0, err
    kept = {r["id"]: r for r in outputs.read_kind(ws.root / out, "kept").to_pylist()}
    rejected = {r["id"]: r for r in outputs.read_kind(ws.root / out, "rejected").to_pylist()}
    return kept, rejected


def test_copies_across_files_and_workers_boilerplate_is_not_a_duplicate(ws, run_cli):
    texts = udhr_paragraphs("en", 6, min_words=120)
    a = [{"id": f"a{i}", "text": t} for i, t in enumerate(texts[:4])]
    b = [{"id": "b-exact", "text": texts[0]}, {"id": "b-near", "text": change_words(texts[1], 2)},
         # different articles sharing only a header and a footer
         {"id": "b-boiler1", "text": f"{BOILERPLATE}\n{texts[4]}\n{BOILERPLATE}"},
         {"id": "b-boiler2", "text": f"{BOILERPLATE}\n{texts[5]}\n{BOILERPLATE}"}]
    for name, docs in (("a", a), ("b", b)):
        (ws.root / f"{name}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    write_card(ws, "dups", "'*.jsonl'", languages="[en]", data_extra=", id_field: id",
               extra="recipe: {skip: [quality]}\n")
    kept, rejected = run(ws, run_cli, "two", 2)
    assert rejected["b-exact"]["reason"] == "duplicate" and "(exact)" in rejected["b-exact"]["detail"]
    assert rejected["b-near"]["reason"] == "duplicate" and "(near)" in rejected["b-near"]["detail"]
    assert {"a0", "a1", "b-boiler1", "b-boiler2"} <= set(kept)
    assert len(kept) + len(rejected) == 8
    kept1, rejected1 = run(ws, run_cli, "one", 1)
    assert kept1 == kept and rejected1 == rejected


def test_decisions_do_not_depend_on_key_buckets(ws, run_cli, monkeypatch):
    """Every dedup kind on (template lines, URL, exact, near), with one key bucket and with dozens."""
    texts = udhr_paragraphs("en", 14, min_words=60)
    docs = [{"id": f"p{i:02d}", "text": f"{BOILERPLATE}\n{t}", "url": f"https://news.example/{i}"}
            for i, t in enumerate(texts[:13])]
    docs += [{"id": "x-exact", "text": texts[0], "url": "https://copy.example/a"},
             {"id": "x-near", "text": change_words(texts[1], 2), "url": "https://copy.example/b"},
             {"id": "x-url", "text": texts[13], "url": "http://NEWS.example/3?utm=1"}]
    for name, part in (("c", docs[::2]), ("d", docs[1::2])):
        (ws.root / f"{name}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in part))
    write_card(ws, "keys", "'[cd].jsonl'", languages="[en]", data_extra=", id_field: id, url_field: url",
               extra="recipe: {skip: [quality], dedup: {template: true, url: true}}\n")
    one = run(ws, run_cli, "one-bucket", 1, "keys")
    monkeypatch.setattr(spill, "KEY_BUCKET_INPUT_BYTES", 512)
    assert spill.bucket_count(sum(p.stat().st_size for p in ws.root.glob("[cd].jsonl"))) > 20
    many = run(ws, run_cli, "many-buckets", 1, "keys")
    assert many == one
    kept, rejected = one
    assert all(BOILERPLATE.splitlines()[0] not in r["text"] for r in kept.values())  # template lines removed
    assert {i: rejected[i]["detail"] for i in ("x-exact", "x-near", "x-url")} == {
        "x-exact": "duplicate of p00 (exact)", "x-near": "duplicate of p01 (near)",
        "x-url": "duplicate of p03 (url)"}


def test_code_exact_key_strips_only_whitespace():
    from roots.dedup.minhash import exact_key

    assert exact_key("return a - b", "code-python") != exact_key("return a + b", "code-python")
    assert (exact_key("def f():\n    return 1", "code-python")
            == exact_key("def f():\n\treturn 1", "code-python"))
    assert exact_key("Hello, world 1") == exact_key("Hello world 2")  # text: ROOTS's recipe
