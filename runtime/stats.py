"""Latency statistics: the one definition used by ``pix2pix bench``, ``pix2pix run`` and the
benchmark suite.

- percentiles by linear interpolation between samples (numpy's default);
- **fps** = images per second = ``batch * 1000 / p50_ms``: the median latency, so that a few
  slow calls on a shared machine do not move it (the mean is reported beside it).
"""

from __future__ import annotations

import numpy as np

FPS_DEFINITION = "images per second = batch * 1000 / p50_ms (the median latency)"
PERCENTILE_DEFINITION = "over the timed calls, linear interpolation (numpy default)"


def latency_stats(seconds, batch: int = 1, qs=(50, 90, 99)) -> dict:
    """``n``, ``mean_ms``, ``std_ms``, ``min_ms``, ``p<q>_ms`` for each of ``qs``, ``max_ms``
    and ``fps`` of per-call latencies given in seconds (ms rounded to 4 decimals)."""
    ms = np.asarray(seconds, dtype=np.float64).reshape(-1) * 1000.0
    if ms.size == 0:
        raise ValueError("no timings")
    p50 = float(np.percentile(ms, 50))
    out = {"n": int(ms.size), "mean_ms": round(float(ms.mean()), 4),
           "std_ms": round(float(ms.std()), 4), "min_ms": round(float(ms.min()), 4)}
    out.update({f"p{q}_ms": round(float(np.percentile(ms, q)), 4) for q in qs})
    out["max_ms"] = round(float(ms.max()), 4)
    out["fps"] = round(batch * 1000.0 / p50, 3) if p50 > 0 else None
    return out


def percentiles(ms, qs=(50, 95, 99)) -> dict:
    """``p<q>_ms``, ``mean_ms``, ``max_ms`` and ``n`` of a list of milliseconds (the pipeline's
    per-stage figures); zeros when empty (a run that wrote no frame)."""
    keys = [f"p{q}_ms" for q in qs] + ["mean_ms", "max_ms"]
    if len(ms) == 0:
        return {**{k: 0.0 for k in keys}, "n": 0}
    s = latency_stats(np.asarray(ms, dtype=np.float64) / 1000.0, qs=qs)
    return {**{k: s[k] for k in keys}, "n": s["n"]}
