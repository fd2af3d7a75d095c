"""The cyclic garbage collector, settled for a long-running process of the server."""

from __future__ import annotations

import gc


def settle_collector() -> None:
    """Keep the cyclic garbage collector's pauses out of the desks' latency.

    Everything built at start-up lives as long as the process: frozen, no collection scans it
    again. Young collections run every 20,000 allocations rather than 700, and the older
    generations less often: a check-in allocates a few thousand objects, nearly all freed by
    reference counting, and the default thresholds paused every few requests (p99 at 16
    desks fell from about 95 ms to about 55 ms, bench/README.md). The server's process and
    its check-in writer both settle it once their services are built.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
