from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from roots.io.readers import ReaderSpec, file_pattern, read, stable_id


def spec(fmt: str, **kw) -> ReaderSpec:
    return ReaderSpec(source="s", fmt=fmt, **kw)


def kinds(records):
    return [r["kind"] for r in records]


def test_jsonl_good_and_broken_lines():
    lines = [
        json.dumps({"id": "a", "text": "hello", "url": "http://x/a", "title": "T"}).encode(),
        b"{not json",
        b"",
        json.dumps({"text": 5}).encode(),
        json.dumps({"body": "no text field"}).encode(),
        json.dumps(["a", "list"]).encode(),
        b'{"text": "caf\xe9"}',
        json.dumps({"text": "no id here"}).encode(),
    ]
    out = list(read(spec("jsonl", id_field="id", url_field="url"), "f.jsonl", io.BytesIO(b"\n".join(lines))))
    assert kinds(out) == ["doc", "quarantine", "quarantine", "quarantine", "quarantine", "quarantine", "doc"]
    assert (out[0]["id"] == "a" and out[0]["url"] == "http://x/a"
            and json.loads(out[0]["meta"]) == {"title": "T"})
    errors = [r["error"] for r in out if r["kind"] == "quarantine"]
    assert "malformed JSON" in errors[0] and [r["line"] for r in out
                                              if r["kind"] == "quarantine"] == [2, 4, 5, 6, 7]
    assert "int, expected a string" in errors[1]
    assert "no field 'text'" in errors[2]
    assert "expected an object" in errors[3]
    assert "not UTF-8" in errors[4] and out[5]["raw"] == b'{"text": "caf\xe9"}'
    assert out[6]["id"] == stable_id("s", "f.jsonl:8")


def test_generated_ids_are_stable():
    data = b'{"text": "x"}\n{"text": "y"}\n'
    a = [r["id"] for r in read(spec("jsonl"), "dir/f.jsonl", io.BytesIO(data))]
    b = [r["id"] for r in read(spec("jsonl"), "dir/f.jsonl", io.BytesIO(data))]
    assert a == b and len(set(a)) == 2


def test_text_line_and_document_modes():
    data = b"first line\n\nsecond line\n"
    out = list(read(spec("text", text_unit="line"), "t.txt", io.BytesIO(data)))
    assert [r["text"] for r in out] == ["first line", "second line"]
    out = list(read(spec("text", text_unit="document"), "t.txt", io.BytesIO(data)))
    assert len(out) == 1 and out[0]["text"] == "first line\n\nsecond line\n"
    out = list(read(spec("text", text_unit="document"), "t.txt", io.BytesIO(b"\xff\xfe bad")))
    assert kinds(out) == ["quarantine"]


def test_csv_rows_and_bad_rows():
    data = b"id,text,url\n1,hello world,http://a\n2,\"multi\nline\",\n3,a,b,c\n" + b"4,caf\xe9,\n"
    out = list(read(spec("csv", id_field="id", url_field="url"), "c.csv", io.BytesIO(data)))
    assert kinds(out) == ["doc", "doc", "quarantine", "quarantine"]
    assert out[1]["text"] == "multi\nline" and out[0]["id"] == "1"


def test_parquet_and_arrow_stream():
    table = pa.table({"text": ["a", None, "c"], "id": ["1", "2", "3"]})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    buf.seek(0)
    out = list(read(spec("parquet", id_field="id"), "p.parquet", buf))
    assert kinds(out) == ["doc", "quarantine", "doc"] and out[1]["line"] == 2
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    out = list(read(spec("hf", id_field="id"), "data-00000-of-00001.arrow",
                    io.BytesIO(sink.getvalue().to_pybytes())))
    assert kinds(out) == ["doc", "quarantine", "doc"]
    out = list(read(spec("parquet"), "bad.parquet", io.BytesIO(b"not parquet")))
    assert kinds(out) == ["quarantine"]


def test_hf_pattern():
    assert file_pattern("hf", "/data/ds/") == "/data/ds/*.arrow"
    assert file_pattern("jsonl", "/data/*.jsonl") == "/data/*.jsonl"


# ------------------------------------------------------------------------------------ compressed inputs
def _compress(codec: str, data: bytes) -> bytes:
    import bz2
    import gzip
    import lzma

    import zstandard

    return {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress,
            "zstd": zstandard.ZstdCompressor().compress}[codec](data)


JSONL = b"".join(json.dumps({"id": f"d{i}", "text": f"document number {i}"}).encode() + b"\n"
                 for i in range(200))


@pytest.mark.parametrize("codec", ["gzip", "bzip2", "xz", "zstd"])
def test_compressed_jsonl_reads_like_the_plain_file(codec: str) -> None:
    plain = list(read(spec("jsonl", id_field="id"), "f.jsonl", io.BytesIO(JSONL)))
    # the bytes decide, not the name: a compressed file without its extension is still read
    for name in (f"f.jsonl.{codec}", "f.jsonl"):
        got = list(read(spec("jsonl", id_field="id"), name, io.BytesIO(_compress(codec, JSONL))))
        assert [r["id"] for r in got] == [r["id"] for r in plain] and len(got) == 200
        assert [r["origin"].split(":")[1] for r in got] == [r["origin"].split(":")[1] for r in plain]


def test_compressed_csv_and_text_lines() -> None:
    body = "id,text\n" + "".join(f'{i},"row {i}"\n' for i in range(50))
    rows = list(read(spec("csv", id_field="id"), "c.csv.bz2", io.BytesIO(_compress("bzip2", body.encode()))))
    assert kinds(rows) == ["doc"] * 50 and rows[49]["text"] == "row 49"
    lines = list(read(spec("text"), "t.txt.zst", io.BytesIO(_compress("zstd", b"one\ntwo\n\nthree\n"))))
    assert [r["text"] for r in lines] == ["one", "two", "three"]


@pytest.mark.parametrize("codec", ["gzip", "bzip2", "xz", "zstd"])
def test_concatenated_members_and_frames_are_all_read(codec: str) -> None:
    """`cat a.gz b.gz` and multi-frame zstd (parallel compressors) are one stream, as the tools read them."""
    half = JSONL.split(b"\n", 100)
    data = _compress(codec, b"\n".join(half[:100]) + b"\n") + _compress(codec, half[100])
    assert len(list(read(spec("jsonl"), f"f.jsonl.{codec}", io.BytesIO(data)))) == 200


@pytest.mark.parametrize("codec", ["gzip", "bzip2", "xz", "zstd"])
def test_truncated_stream_keeps_what_came_before_and_quarantines_the_rest(codec: str) -> None:
    big = b"".join(json.dumps({"id": f"d{i}", "text": f"document {i} " + "x" * (i % 97)}).encode() + b"\n"
                   for i in range(40_000))  # ~4.6 MB: several bzip2 blocks, so some survive the cut
    whole = _compress(codec, big)
    cut = whole[: len(whole) * 9 // 10]
    got = list(read(spec("jsonl", id_field="id"), f"f.jsonl.{codec}", io.BytesIO(cut)))
    docs, bad = got[:-1], got[-1]
    assert kinds(docs) == ["doc"] * len(docs) and 0 < len(docs) < 40_000
    assert [r["id"] for r in docs] == [f"d{i}" for i in range(len(docs))]  # a prefix, in order
    assert bad["kind"] == "quarantine" and bad["line"] == len(docs) + 1
    assert f"corrupt {codec} stream" in bad["error"] and "compressed byte" in bad["error"]
    assert "line(s) before it were read" in bad["error"]


def test_parquet_is_never_sniffed_as_a_stream() -> None:
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": ["a b c"]}), buf)
    buf.seek(0)
    assert kinds(list(read(spec("parquet"), "p.parquet", buf))) == ["doc"]


@pytest.mark.parametrize("codec", ["gzip", "bzip2", "xz", "zstd"])
def test_compressed_inputs_report_their_text_bytes(codec: str) -> None:
    sizes: dict[str, int] = {}
    assert len(list(read(spec("jsonl"), "f", io.BytesIO(_compress(codec, JSONL)), sizes))) == 200
    assert sizes == {"text_bytes": len(JSONL)}
    plain: dict[str, int] = {}
    list(read(spec("jsonl"), "f", io.BytesIO(JSONL), plain))
    assert plain == {}  # a plain file's size is its text size already
