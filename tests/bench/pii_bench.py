"""`make bench` rows for PII (issue 19): precision and recall per tag on the labelled real-text set next
to the web sample's recall, and the worst hostile 1 MB document per tag."""

from __future__ import annotations

import time
from typing import Any

from roots.stages.pii import TAGS, PiiScrubber
from tests.pii_eval import hostile_documents, load_real, score, web_recall


def pii_rows(size: int = 1_000_000) -> list[dict[str, Any]]:
    """Prints the quality table and returns the timing rows (one per tag: its worst hostile document)."""
    real = score(load_real(), PiiScrubber().find)
    web_scrubber = PiiScrubber(documentation_ips=True)  # as the web_noisy card sets it
    web = web_recall(lambda t: web_scrubber.scrub(t)[0])
    print(f"{'PII tag':<12} {'real: labelled':>14} {'found':>6} {'precision':>9} {'recall':>7} "
          f"{'web recall':>10}")
    for tag in TAGS:
        r = real.get(tag, {"labelled": 0, "found": 0, "precision": 1.0, "recall": 1.0})
        w = web.get(tag)
        print(f"{tag:<12} {r['labelled']:>14} {r['found']:>6} {r['precision']:>9.3f} {r['recall']:>7.3f} "
              f"{'-' if w is None else f'{w:.3f}':>10}")
    rows = []
    docs = hostile_documents(size)
    for tag in TAGS:
        scrubber = PiiScrubber(tags=frozenset({tag}))
        worst = (0.0, "")
        for name, text in docs.items():
            start = time.process_time()
            scrubber.scrub(text)
            worst = max(worst, (time.process_time() - start, name))
        rows.append({"stage": f"pii {tag} worst hostile 1 MB ({worst[1]})", "docs": 1,
                     "wall_s": round(worst[0], 3), "cpu_s": round(worst[0], 3),
                     "docs_per_s_per_core": round(1 / worst[0], 2) if worst[0] else None,
                     "peak_rss_mb": None})
    return rows


if __name__ == "__main__":
    for row in pii_rows():
        print(f"{row['stage']:<60} {row['cpu_s']:>8} s")
