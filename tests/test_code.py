"""Code sources (issue #9): a curated source tree through the real pipeline, secrets, licences, the merge.

The tree holds small real source files in seven languages plus one file for each way a file leaves:
minified, generated, binary, duplicate, too big, too small, unknown extension, licence not cleared,
degenerate (symbols only, a data table, long lines). The module fixture runs it once (`roots run`) and
merges it with a small English source (`roots merge --vocab-size 600`); the tests read the outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from roots.cli import app
from roots.core import workspace
from roots.governance import changes
from roots.io import outputs, readers
from roots.release import tokenizer as toklib
from roots.stages import code
from roots.stages.process import DocumentProcessor, ProcessConfig
from tests.conftest import udhr_paragraphs, vouch, write_card

APP_PY = '''"""Command-line entry point of the inventory tool."""

import argparse
import sys


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Count items per warehouse.")
    parser.add_argument("inventory", help="CSV file with warehouse,item,count rows")
    parser.add_argument("--min-count", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    totals: dict[str, int] = {}
    with open(args.inventory, encoding="utf-8") as fh:
        for line in fh:
            warehouse, _item, count = line.rstrip("\\n").split(",")
            totals[warehouse] = totals.get(warehouse, 0) + int(count)
    for warehouse, total in sorted(totals.items()):
        if total >= args.min_count:
            print(f"{warehouse}\\t{total}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''

STRINGS_PY = '''def slugify(title: str) -> str:
    """Lower-case words joined by dashes, for URLs."""
    words = "".join(c if c.isalnum() else " " for c in title.lower()).split()
    return "-".join(words)


def truncate(text: str, limit: int, ellipsis: str = "...") -> str:
\tif len(text) <= limit:
\t\treturn text
\treturn text[: max(0, limit - len(ellipsis))] + ellipsis
'''

SETTINGS_PY = '''"""Deployment settings for the billing service.

Maintainer: Dana Whitfield <dana.whitfield@example.org>
"""
import os

DATABASE_URL = "postgresql://billing:Xk9pQ2vLm7@db.internal.example.com:5432/billing"
AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
STRIPE_API_KEY = os.environ.get("STRIPE_API_KEY", "sk_live_4eC39HqLyjWDarjtT1zdp7dc")
SIGNING_KEY = """-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun
VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK
-----END RSA PRIVATE KEY-----"""
TIMEOUT_SECONDS = 30
VERSION = "2.4.1.7"
BRAND_COLOR = "#1a2b3c"
LOCAL_API = "http://127.0.0.1:8080/v1"
'''

INDEX_JS = '''import { readFile } from "node:fs/promises";

/**
 * Load a JSON configuration file and merge it over the defaults.
 */
export async function loadConfig(path, defaults = {}) {
  const raw = await readFile(path, "utf8");
  const parsed = JSON.parse(raw);
  return { ...defaults, ...parsed };
}

export function debounce(fn, waitMs) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), waitMs);
  };
}
'''

MAIN_GO = '''package main

import (
\t"fmt"
\t"log"
\t"net/http"
\t"os"
)

func healthHandler(w http.ResponseWriter, r *http.Request) {
\tw.Header().Set("Content-Type", "application/json")
\tfmt.Fprintln(w, `{"status": "ok"}`)
}

func main() {
\taddr := os.Getenv("LISTEN_ADDR")
\tif addr == "" {
\t\taddr = ":8080"
\t}
\thttp.HandleFunc("/healthz", healthHandler)
\tlog.Printf("listening on %s", addr)
\tlog.Fatal(http.ListenAndServe(addr, nil))
}
'''

LIB_RS = '''// SPDX-License-Identifier: MIT

/// A fixed-capacity ring buffer that overwrites the oldest element when full.
pub struct RingBuffer<T> {
    items: Vec<Option<T>>,
    head: usize,
    len: usize,
}

impl<T> RingBuffer<T> {
    pub fn with_capacity(capacity: usize) -> Self {
        let mut items = Vec::with_capacity(capacity);
        items.resize_with(capacity, || None);
        RingBuffer { items, head: 0, len: 0 }
    }

    pub fn push(&mut self, value: T) {
        let capacity = self.items.len();
        let tail = (self.head + self.len) % capacity;
        self.items[tail] = Some(value);
        if self.len == capacity {
            self.head = (self.head + 1) % capacity;
        } else {
            self.len += 1;
        }
    }
}
'''

GREETER_JAVA = '''package com.example;

import java.util.List;
import java.util.stream.Collectors;

public final class Greeter {
    private final String greeting;

    public Greeter(String greeting) {
        this.greeting = greeting;
    }

    public List<String> greetAll(List<String> names) {
        return names.stream()
                .map(name -> greeting + ", " + name + "!")
                .collect(Collectors.toList());
    }
}
'''

LIST_C = '''#include <stdlib.h>

struct node {
    int value;
    struct node *next;
};

/* Push a value onto the front of the list; returns the new head or NULL if out of memory. */
struct node *list_push(struct node *head, int value) {
    struct node *n = malloc(sizeof *n);
    if (n == NULL) {
        return NULL;
    }
    n->value = value;
    n->next = head;
    return n;
}

void list_free(struct node *head) {
    while (head != NULL) {
        struct node *next = head->next;
        free(head);
        head = next;
    }
}
'''

GPL_C = '''// SPDX-License-Identifier: GPL-2.0-only
/*
 * Checksum helper borrowed from a GPL project.
 */
unsigned int fold_checksum(const unsigned char *data, unsigned long length) {
    unsigned int sum = 0;
    for (unsigned long i = 0; i < length; i++) {
        sum = (sum << 1) ^ data[i];
    }
    return sum;
}
'''

PB_GO = '''// Code generated by protoc-gen-go. DO NOT EDIT.
// source: api/service.proto

package api

type PingRequest struct {
\tMessage string `protobuf:"bytes,1,opt,name=message,proto3" json:"message,omitempty"`
}
'''

SCHEMA_PY = '''# This file is autogenerated by schema-tool; edit schema.yaml instead.
from dataclasses import dataclass


@dataclass
class Customer:
    id: int
    name: str
    email_verified: bool
'''

MINIFIED_JS = "".join(f"var a{i}=function(b,c){{return b*{i}+c-{i % 7}}};" for i in range(120)) + "\n"
SYMBOLS_LUA = "-- " + "=" * 60 + "\n" + "".join("--[[ ~~~~ ++++ ---- |||| ]]  -- {} () [] <> ** ##\n"
                                                for _ in range(20))
CRC_GO = "package crc\n\nvar table = [...]uint32{\n" + "".join(
    "\t" + " ".join(f"0x{(i * 8 + j) * 2654435761 % 2**32:08x}," for j in range(8)) + "\n"
    for i in range(32)) + "}\n"
LONG_LINES_TS = "export const messages = {\n" + "".join(
    f'  m{i}: "'
    f'{("Your order number " + str(i) + " has shipped and will arrive within three working days. ") * 2}",\n'
    for i in range(12)) + "};\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00\x1f\xf3\xffa"

KEPT = {  # path in the tree -> its text
    "src/app.py": APP_PY, "src/util/strings.py": STRINGS_PY, "config/settings.py": SETTINGS_PY,
    "web/index.js": INDEX_JS, "cmd/server/main.go": MAIN_GO, "src/lib.rs": LIB_RS,
    "java/com/example/Greeter.java": GREETER_JAVA, "c/list.c": LIST_C,
}
REJECTED = {  # path -> (expected reason, content)
    "vendor/fold.c": ("code_license", GPL_C),
    "api/service.pb.go": ("code_autogenerated", PB_GO),
    "gen/schema.py": ("code_autogenerated", SCHEMA_PY),
    "web/bundle.min.js": ("code_max_line_length", MINIFIED_JS),
    "web/messages.ts": ("code_mean_line_length", LONG_LINES_TS),
    "art/banner.lua": ("code_alphanum", SYMBOLS_LUA),
    "crc/table.go": ("code_token_length", CRC_GO),
    "scripts/hello.rb": ("code_size", 'puts "hello"\n'),
    "README.md": ("code_unknown_extension", "# Inventory tool\n\nSmall utilities used in the tests.\n" * 3),
    "assets/logo.png": ("code_binary", PNG),
    "data/dump.js": ("code_size", "x" * ((1 << 20) + 10)),
    # the same file re-indented with trailing spaces: equal after whitespace is stripped
    "backup/app_copy.py": ("duplicate", APP_PY.replace("    ", "  ").replace("\n", "  \n")),
}


def write_tree(root: Path) -> None:
    for rel, content in [*KEPT.items(), *((p, c) for p, (_, c) in REJECTED.items())]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode("utf-8"))


def code_card(ws: workspace.Workspace, name: str, path: str, fmt: str = "text", data_extra: str = "",
              extra: str = "") -> None:
    write_card(ws, name, path, fmt=fmt, languages="[code]", data_extra=data_extra,
               extra=f"kind: code\n{extra}")
    card = ws.sources_dir / f"{name}.yaml"
    card.write_text(card.read_text().replace("license: CC0-1.0", "license: MIT"))
    vouch(ws, card)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[workspace.Workspace, Path]:
    ws = changes.init_workspace(tmp_path_factory.mktemp("code") / "ws")
    write_tree(ws.root / "tree")
    code_card(ws, "code_tree", "tree")
    en = udhr_paragraphs("en", 3)
    (ws.root / "en.jsonl").write_text("".join(json.dumps({"id": f"en{i}", "text": t}) + "\n"
                                              for i, t in enumerate(en)), encoding="utf-8")
    write_card(ws, "prose", "en.jsonl", languages="[en]", data_extra=", id_field: id")
    root = str(ws.root)
    assert app.main(["--workspace", root, "run", "code_tree"]) == 0
    assert app.main(["--workspace", root, "run", "prose"]) == 0
    assert app.main(["--workspace", root, "merge", "--vocab-size", "600"]) == 0
    return ws, ws.root / "release" / "latest"


def rows(ws: workspace.Workspace, name: str, kind: str) -> dict[str, dict]:
    return {r["origin"]: r for r in outputs.read_kind(ws.root / "runs" / name, kind).to_pylist()}


def test_tree_outcomes_through_the_pipeline(built):
    ws, _ = built
    kept, rejected = rows(ws, "code_tree", "kept"), rows(ws, "code_tree", "rejected")
    stats = json.loads((ws.root / "runs" / "code_tree" / "stats.json").read_text())
    assert stats["documents"] == {"input": len(KEPT) + len(REJECTED), "kept": len(KEPT),
                                  "rejected": len(REJECTED), "quarantined": 0}
    # exactly one copy of the duplicated file is kept: the one whose id sorts first
    dup = "backup/app_copy.py" if "backup/app_copy.py" in rejected else "src/app.py"
    expected = ({p: reason for p, (reason, _) in REJECTED.items() if p != "backup/app_copy.py"}
                | {dup: "duplicate"})
    assert {p: r["reason"] for p, r in rejected.items()} == expected
    assert set(kept) == (set(KEPT) | {"backup/app_copy.py"}) - {dup}
    langs = {p: r["lang"] for p, r in kept.items()}
    assert {langs[p] for p in langs} >= {"code-python", "code-javascript", "code-go", "code-rust",
                                         "code-java", "code-c"}
    assert rejected["README.md"]["lang"] == "code" and rejected["assets/logo.png"]["lang"] == "code"
    assert "NUL byte" in rejected["assets/logo.png"]["detail"]
    assert "not read" in rejected["data/dump.js"]["detail"] and rejected["data/dump.js"]["n_bytes"] > 1 << 20
    assert "GPL-2.0-only" in rejected["vendor/fold.c"]["detail"]
    assert "code generated" in rejected["api/service.pb.go"]["detail"]
    # code statistics are stored (score, then decide); text stages did not run
    minified = rejected["web/bundle.min.js"]
    assert minified["max_line_length"] > 1000 and minified["number_words"] is None
    for row in kept.values():
        assert row["lang_backend"] == "extension" and row["ppl_status"] == "skipped"
        assert row["lang_score"] is None and row["stopwords_ratio"] is None
        assert row["alphanum_fraction"] >= 0.25 and row["max_line_length"] <= 1000
        assert row["license"] == "MIT"  # the card's, or lib.rs's own SPDX header
    quality = next(s for s in stats["stages"] if s["stage"] == "quality")
    assert quality["removed"] == len(REJECTED) - 1  # every code_* reason; the duplicate is the dedup stage's


def test_kept_code_is_byte_exact_except_secrets(built):
    ws, _ = built
    kept = rows(ws, "code_tree", "kept")
    for path, row in kept.items():
        original = (ws.root / "tree" / path).read_bytes().decode("utf-8")
        if path == "config/settings.py":
            continue
        assert row["text"] == original, path  # indentation, tabs and trailing newline untouched
        assert row["pii"] == ""
    secret = kept["config/settings.py"]
    assert json.loads(secret["pii"]) == {"EMAIL": 1, "KEY": 2, "PASSWORD": 1, "PRIVATE_KEY": 1}
    text = secret["text"]
    assert "Dana Whitfield <PI:EMAIL>" in text
    assert '"postgresql://billing:PI:PASSWORD@db.internal.example.com:5432/billing"' in text
    assert 'AWS_ACCESS_KEY_ID = "PI:KEY"' in text and '"STRIPE_API_KEY", "PI:KEY")' in text
    assert 'SIGNING_KEY = """PI:PRIVATE_KEY"""' in text and "MIIE" not in text
    # version strings, hex colours and loopback addresses are not secrets
    assert 'VERSION = "2.4.1.7"' in text and '"#1a2b3c"' in text and "http://127.0.0.1:8080/v1" in text
    stats = json.loads((ws.root / "runs" / "code_tree" / "stats.json").read_text())
    assert stats["pii_replacements"] == {"EMAIL": 1, "KEY": 2, "PASSWORD": 1, "PRIVATE_KEY": 1}


def test_code_merges_into_its_own_group_and_decodes_byte_for_byte(built):
    ws, rel = built
    tok = toklib.load(rel / "tokenizer.json")
    kept = {r["id"]: r["text"] for r in outputs.read_kind(ws.root / "runs" / "code_tree", "kept").to_pylist()}
    from roots.release import megatron

    seen = set()
    for path in sorted((rel / "lineage").glob("code*.parquet")):
        dataset = megatron.IndexedDataset(str(rel / "shards" / path.stem), verify=True)
        import pyarrow.parquet as pq

        for i, row in enumerate(pq.read_table(path).to_pylist()):
            assert row["source"] == "code_tree" and row["lang"].startswith("code-")
            ids = [int(t) for t in dataset[i]]
            assert ids[-1] == toklib.eod_id(tok)
            assert tok.decode(ids[:-1], skip_special_tokens=False) == kept[row["id"]]
            seen.add(row["id"])
    assert seen == set(kept)
    blend = json.loads((rel / "blend.json").read_text())
    assert set(blend["weights"]) == {"code", "en"} and 0 < blend["weights"]["code"] < 1
    manifest = json.loads((rel / "manifest.json").read_text())
    assert manifest["languages"]["code"]["documents"] == len(kept)


def test_tokenizer_sample_includes_code_and_keeps_indentation(built):
    ws, rel = built
    from roots.jobs import merge

    cfg = merge.settings(ws)
    sample = "\n".join(merge.tokenizer_sample(merge.gate(ws), {}, cfg))
    assert "func healthHandler(w http.ResponseWriter, r *http.Request) {" in sample
    tok = toklib.load(rel / "tokenizer.json")
    snippet = "def f(x):\n    if x:\n\t\treturn [x,  y]\n        \n"
    pieces = [p for p, _ in toklib.build_bloom_tokenizer().pre_tokenizer.pre_tokenize_str(snippet)]
    # whitespace runs are pieces of their own (in ByteLevel's alphabet: Ġ space, Ċ newline, ĉ tab)
    assert {"ĊĠĠĠ", "Ċĉĉ", "ĊĠĠĠĠĠĠĠĠĊ"} <= set(pieces) and "Ġif" in pieces
    for text in [snippet, *KEPT.values()]:
        assert tok.decode(tok.encode(text).ids) == text


def test_jsonl_code_with_license_field(ws, run_cli):
    records = [
        {"path": "pkg/a.py", "content": APP_PY, "license": "mit", "repo": "acme/tools"},
        {"path": "pkg/b.go", "content": MAIN_GO, "license": "gpl-3.0", "repo": "acme/server"},
        {"path": "pkg/c.rs", "content": LIB_RS.replace("MIT", "Apache-2.0"), "license": "gpl-3.0"},
        {"path": "pkg/d.js", "content": INDEX_JS, "license": ["mit", "bsd-2-clause"]},
        {"path": "pkg/e.c", "content": LIST_C, "license": None},
        {"path": "pkg/f.java", "content": "class A {}\u0000\u0000" + GREETER_JAVA},
        {"content": LIST_C.replace("value", "item")},
    ]
    (ws.root / "code.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    code_card(ws, "gh", "code.jsonl", fmt="jsonl", data_extra=", license_field: license")
    rc, _, err = run_cli("--workspace", str(ws.root), "run", "gh")
    assert rc == 0, err
    kept, rejected = rows(ws, "gh", "kept"), rows(ws, "gh", "rejected")
    by_path = {json.loads(r["meta"] or "{}").get("path"): r for r in [*kept.values(), *rejected.values()]}
    kept_ids = {r["id"] for r in kept.values()}
    assert by_path["pkg/a.py"]["id"] in kept_ids
    assert by_path["pkg/b.go"]["reason"] == "code_license" and "gpl-3.0" in by_path["pkg/b.go"]["detail"]
    # the file's own SPDX header beats the dataset's licence field
    assert by_path["pkg/c.rs"]["license"] == "Apache-2.0" and by_path["pkg/c.rs"]["id"] in kept_ids
    assert by_path["pkg/d.js"]["reason"] == "code_license"  # all detected licences must be cleared
    assert by_path["pkg/e.c"]["license"] == "MIT" and by_path["pkg/e.c"]["id"] in kept_ids  # the card's
    assert by_path["pkg/f.java"]["reason"] == "code_binary"
    assert by_path[None]["reason"] == "code_unknown_extension"
    # the other fields stay in `meta`, with where the licence came from; the licence has its own column
    assert json.loads(by_path["pkg/a.py"]["meta"]) == {"path": "pkg/a.py", "repo": "acme/tools",
                                                       "license_from": "field"}
    assert json.loads(by_path["pkg/c.rs"]["meta"])["license_from"] == "SPDX header"


def test_language_code_card_and_threshold_overrides(ws, run_cli):
    """`roots source add --language code` (no `kind:`) makes a code source; the card's thresholds win."""
    write_tree(ws.root / "tree")
    rc, _, err = run_cli("--workspace", str(ws.root), "source", "add", "loose", "--path", "tree/web/*.js",
                         "--format", "text", "--license", "MIT", "--custodian", "Tests", "--language", "code")
    assert rc == 0, err
    card = ws.sources_dir / "loose.yaml"
    card.write_text(card.read_text() + "recipe:\n  thresholds:\n"
                    "    code-javascript: {max_line_length: 9000, mean_line_length: 9000}\n")
    rc, _, err = run_cli("--workspace", str(ws.root), "run", "loose")
    assert rc == 0, err
    kept = rows(ws, "loose", "kept")
    assert set(kept) == {"index.js", "bundle.min.js"}  # paths relative to the glob's directory
    assert kept["bundle.min.js"]["lang"] == "code-javascript"


# ------------------------------------------------------------------------------------------ units

def test_language_table():
    table = code.load_table()
    assert len({k for k in table.names}) == 13
    cases = {"a/b.py": "python", "x.C": "cpp", "x.c": "c", "x.h": "c", "x.hpp": "cpp", "m.PY": "python",
             "a.tsx": "typescript", "s.scala": "scala", "x.php5": "php", "k.lua": "lua", "p.cs": "csharp",
             "r.rb": "ruby", "Makefile": None, ".bashrc": None, "notes.md": None}
    assert {p: table.language_of(p) for p in cases} == cases
    assert table.params("go").max_line_length == 1000
    with pytest.raises(Exception, match="unknown threshold key"):
        table.params("go", {"max_line": 3})


def test_extensible_table(tmp_path):
    path = tmp_path / "langs.yaml"
    path.write_text("defaults: {max_bytes: 1000, min_chars: 1, max_chars: 900, max_line_length: 80, "
                    "mean_line_length: 40, alphanum_fraction_min: 0.1, token_length_std_min: null, "
                    "autogenerated_lines: 2, autogenerated_markers: [generated]}\n"
                    "languages:\n  kotlin: {name: Kotlin, extensions: [.kt, .kts], max_line_length: 120}\n")
    table = code.load_table(str(path))
    assert table.language_of("Main.kt") == "kotlin" and table.language_of("a.py") is None
    assert (table.params("kotlin").max_line_length == 120
            and table.params("kotlin").token_length_std_min is None)


def test_secrets_idempotent_and_false_positives():
    samples = [
        SETTINGS_PY,
        "git clone git@github.com:acme/tools.git\n@Override\n@property\nimport '@babel/core';\n",
        'PASSWORD_FIELD = "password"\nsecret_name = "db-creds"\npassword = "${DB_PASSWORD}"\n',
        'colour = "#ff00aa"; v = "10.2.3.4"; ip = "192.168.0.1"; uuid_like = "build-2024-01-15"\n',
        ('cfg := Config{Password: "tr0ub4dor&3"}\nk = "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXkt'
         'djEAAAAABG5vbmU\\nAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\\n"\nnext_line = 1\n'),
    ]
    outs = [code.scrub_secrets(s) for s in samples]
    for (out, _), sample in zip(outs, samples):
        assert code.scrub_secrets(out) == (out, {}), sample
    assert outs[1] == (samples[1], {})
    assert outs[2] == (samples[2], {})
    assert outs[3] == (samples[3], {})
    assert outs[4][1] == {"PASSWORD": 1, "PRIVATE_KEY": 1} and "next_line = 1" in outs[4][0]


def test_license_expressions():
    def verdict(expression: str) -> str | None:
        return code.license_verdict(expression, "CC0-1.0", frozenset({"mit", "apache-2.0"}))

    assert verdict("MIT") is None and verdict("mit") is None and verdict("CC0-1.0") is None
    assert verdict("MIT OR GPL-3.0-only") is None and verdict("(MIT OR GPL-2.0) AND Apache-2.0") is None
    assert "not cleared" in verdict("GPL-3.0-only AND MIT")
    assert "not cleared" in verdict("GPL-2.0-only WITH Classpath-exception-2.0")
    assert "cannot tell" in verdict("MIT AND")
    assert code.spdx_header("/* SPDX-License-Identifier: MIT OR Apache-2.0 */\nint x;") == "MIT OR Apache-2.0"


def test_processor_on_records_without_beam():
    spec = readers.ReaderSpec(source="s", fmt="jsonl", code=True, text_field="content")
    doc = readers.code_document(spec, "1", "f:1", "x.py", APP_PY.encode())
    proc = DocumentProcessor(ProcessConfig(source="s", code=True, license="MIT", declared=("code",),
                                           cleared_licenses=frozenset({"mit"})))
    (row,) = proc.process([doc])
    assert row["status"] == "kept" and row["lang"] == "code-python" and row["text"] == APP_PY
    assert set(code.code_stats("a\nbb\n")) == {"max_line_length", "mean_line_length", "alphanum_fraction",
                                               "token_length_std"}
    # --rethreshold decides again from the stored statistics
    strict = DocumentProcessor(ProcessConfig(source="s", code=True, license="MIT", declared=("code",),
                                             thresholds={"code": {"max_line_length": 20}}))
    again = {**row, "status": "pending"}
    strict.decide(again)
    assert again["status"] == "rejected" and again["reason"] == "code_max_line_length"


def test_bundled_code_sample_and_its_data_card(tmp_path):
    """The `make run` code sample: 6 files kept, 2 rejected, and a card that describes code steps."""
    import shutil

    from roots.core import workspace as ws_mod
    from roots.jobs.run import run_source

    repo = Path(__file__).resolve().parent.parent
    ws = ws_mod.init(tmp_path / "ws")
    shutil.copytree(repo / "sources" / "samples" / "code", ws.root / "sources" / "samples" / "code")
    shutil.copy(repo / "sources" / "code_sample.yaml", ws.sources_dir / "code_sample.yaml")
    result = run_source(ws, "code_sample")
    assert result.stats["documents"] == {"input": 8, "kept": 6, "rejected": 2, "quarantined": 0}
    card = (result.out_dir / "README.md").read_text()
    assert "**Programming language** from the file extension" in card and "max line length" in card
    assert "**Normalisation**" not in card and "stop words min" not in card
