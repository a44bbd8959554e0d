"""The same pipelines on a real distributed engine (Beam's DaskRunner on a dask.distributed cluster with two
worker processes on loopback) and on the DirectRunner in multi-processing mode: outputs must equal the
single-process run, byte for byte."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from roots.governance import changes
from roots.jobs import merge
from roots.jobs.run import run_source
from tests.conftest import vouch

REPO = Path(__file__).resolve().parent.parent
KINDS = ("kept", "rejected", "quarantine", "signatures")


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as c:
        yield c
        # Beam's DaskRunner opens a Client per pipeline and never closes it; closed after the cluster,
        # each one would try to reconnect and print a CancelledError traceback at teardown.
        for client in list(distributed.client._global_clients.values()):
            client.close()


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    w = changes.init_workspace(tmp_path_factory.mktemp("runners") / "ws")
    shutil.copytree(REPO / "sources" / "samples" / "web_noisy", w.root / "sources" / "samples" / "web_noisy")
    shutil.copy(REPO / "sources" / "web_noisy.yaml", w.sources_dir / "web_noisy.yaml")
    vouch(w, w.sources_dir / "web_noisy.yaml")
    return w


def files(out: Path, kinds=KINDS) -> dict[str, bytes]:
    return {f"{k}/{p.name}": p.read_bytes() for k in kinds for p in sorted((out / k).glob("*"))}


def dask_args(cluster) -> list[str]:
    return ["--runner=apache_beam.runners.dask.dask_runner.DaskRunner",
            f"--dask_client_address={cluster.scheduler_address}"]


def test_source_run_equal_on_direct_dask_and_multiprocessing(ws, cluster):
    base = run_source(ws, "web_noisy", out=ws.root / "runs" / "direct")
    on_dask = run_source(ws, "web_noisy", out=ws.root / "runs" / "dask", beam_args=dask_args(cluster))
    multi = run_source(ws, "web_noisy", out=ws.root / "runs" / "multi",
                       beam_args=["--runner=DirectRunner", "--direct_num_workers=2",
                                  "--direct_running_mode=multi_processing"])
    assert base.stats["documents"] == {"input": 392, "kept": 244, "rejected": 140, "quarantined": 8}
    assert on_dask.stats["documents"] == multi.stats["documents"] == base.stats["documents"]
    expected = files(base.out_dir)
    assert len(expected) >= 4
    assert files(on_dask.out_dir) == expected
    assert files(multi.out_dir) == expected


def test_merge_tokenisation_equal_on_dask(ws, cluster):
    run_source(ws, "web_noisy")
    direct = merge.merge(ws, out=ws.root / "rel-direct", vocab_size=600)
    on_dask = merge.merge(ws, out=ws.root / "rel-dask", vocab_size=600, beam_args=dask_args(cluster))
    shards = files(direct.out_dir, ("shards", "lineage"))
    assert shards and files(on_dask.out_dir, ("shards", "lineage")) == shards
    assert ((direct.out_dir / "tokenizer.json").read_bytes()
            == (on_dask.out_dir / "tokenizer.json").read_bytes())


def test_warc_source_equal_on_direct_and_dask(ws, cluster):
    """A web source (issue 22): WARC files read through Beam's file matching on Dask workers, every record
    accounted the same way as on the DirectRunner."""
    from tests.web_pages import write_warc

    crawl = ws.root / "crawl"
    crawl.mkdir(exist_ok=True)
    write_warc(crawl / "a.warc.gz", gzip=True)
    write_warc(crawl / "b.warc", gzip=False, truncate_last=False)
    (ws.sources_dir / "crawl.yaml").write_text(
        "name: crawl\nlanguages: [multi]\nlicense: CC0-1.0\ncustodian: {name: Tests}\n"
        "data: {path: crawl/*.warc*, format: warc}\nstatus: {state: active}\n"
        "recipe: {skip: [perplexity], dedup: {url: true, template: true, template_per_domain: true}}\n")
    base = run_source(ws, "crawl", out=ws.root / "runs" / "crawl-direct")
    on_dask = run_source(ws, "crawl", out=ws.root / "runs" / "crawl-dask", beam_args=dask_args(cluster))
    docs = base.stats["documents"]
    assert docs["input"] == 38 and docs["quarantined"] == 3
    assert base.stats["reasons"]["not_response"] == 14 and base.stats["reasons"]["http_status"] == 4
    assert on_dask.stats["documents"] == docs and on_dask.stats["reasons"] == base.stats["reasons"]
    assert files(on_dask.out_dir) == files(base.out_dir)
