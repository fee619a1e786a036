"""Parse a ~6 MB /usages response (the API gateway's limit) and print the figures.

Targets: parsing into our models plus computing the totals takes at most 3× a bare
`json.loads` of the same bytes, and peaks at no more than 10× the payload in extra memory.
"""

from __future__ import annotations

import gc
import json
import statistics
import time
import tracemalloc

from bot.scenario.models import (
    activity_cu_per_job,
    cu_per_model,
    cu_series,
    parse_usages,
    total_cu,
    totals_per_user,
)
from bot.sim.scenario import big_usages_body

RUNS = 7


def parse_and_total(body: bytes) -> float:
    response = parse_usages(json.loads(body))
    totals_per_user(response)
    cu_per_model(response)
    cu_series(response)
    activity_cu_per_job(response)
    return total_cu(response)


def median_seconds(work, body: bytes) -> float:
    times = []
    for _ in range(RUNS):
        gc.collect()
        start = time.perf_counter()
        work(body)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_extra_bytes(body: bytes) -> int:
    gc.collect()
    tracemalloc.start()
    parse_and_total(body)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    body = big_usages_body()
    ours = median_seconds(parse_and_total, body)
    bare = median_seconds(json.loads, body)
    peak = peak_extra_bytes(body)
    print(f"payload:            {len(body) / 1e6:.2f} MB")
    print(f"json.loads median:  {bare * 1000:.1f} ms")
    print(f"ours median:        {ours * 1000:.1f} ms (parse into models + totals)")
    print(f"ratio:              {ours / bare:.2f} (target <= 3)")
    ratio = peak / len(body)
    print(f"peak extra memory:  {peak / 1e6:.1f} MB = {ratio:.1f}x payload (target <= 10x)")


if __name__ == "__main__":
    main()
