"""The benchmark's ratios are what the team quotes; check the arithmetic on rows with known numbers."""

from tests.bench.vs_datatrove import TITLES, Row, kernel_floor, marginal_rates, ratios


def _row(stage: str, tool: str, docs: int, cpu: float, **detail) -> Row:
    return Row(stage=TITLES[stage], tool=tool, docs=docs, wall_s=cpu, cpu_s=cpu,
               docs_per_s_per_core=round(docs / cpu, 1), peak_rss_mb=100.0, detail=detail)


ROWS = [
    _row("e2e", "roots", 2000, 10.0, stage_cpu_seconds={"quality": 1.0, "normalise": 0.5, "langid": 0.7,
                                                        "perplexity": 0.9, "pii": 0.1, "modify": 0.4}),
    _row("e2e_small", "roots", 400, 5.0),
    _row("e2e", "datatrove", 2000, 25.0),
    _row("e2e_small", "datatrove", 400, 9.0),
    _row("kernels", "libraries", 2000, 4.0),
]


def test_marginal_rates_cancel_fixed_costs():
    # roots: 1600 more documents for 5 more CPU seconds; datatrove: 1600 for 16
    assert marginal_rates(ROWS) == {"roots": 320.0, "datatrove": 100.0}


def test_ratios():
    found = ratios(ROWS)
    assert found["roots_over_datatrove_e2e"] == 2.5  # 200 / 80 docs/s/core
    assert found["kernels_over_roots_e2e"] == 2.5  # 500 / 200
    assert found["roots_over_datatrove_marginal"] == 3.2
    assert found["kernels_over_roots_marginal"] == round(500 / 320, 2)


def test_kernel_floor_counts_only_stages_without_a_kernel():
    # quality + normalise + pii + modify = 2.0 s on top of 4.0 s of kernels; LID and perplexity call kernels
    assert kernel_floor(ROWS) == 1.5
    assert kernel_floor([r for r in ROWS if r.tool != "libraries"]) is None
    assert ratios(ROWS[:1])["kernels_over_roots_floor"] is None
