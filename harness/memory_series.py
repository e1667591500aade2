"""Memory over a run, sampled by the parent and kept bounded however long the run lasts.

The sandbox's monitor loop measures the resident memory of the candidate's whole process tree
every few tens of milliseconds (``psutil``, from the parent: nothing here comes from the child).
A 90-minute run would give about 100,000 samples; the report needs a curve, not every sample.
So the samples fall into time buckets that start at ``resolution_s`` wide, each keeping the
largest sample in it; when there are more than ``max_points`` buckets, neighbours merge pairwise
(the width doubles). The curve then always has at most ``max_points`` points, spread evenly over
the run, and its maximum is the largest sample taken: a brief spike survives any coarsening.
"""

from __future__ import annotations

MAX_POINTS = 2000
"""Enough for a figure a few hundred pixels wide; about 40 kB in the JSON report."""
RESOLUTION_S = 0.05
"""The finest bucket: the monitor loop's sampling interval (``harness.sandbox.SAMPLE_INTERVAL_S``)."""


class MemorySeries:
    """Bucketed maxima of (seconds since the start, bytes) samples; at most ``max_points`` buckets."""

    def __init__(self, max_points: int = MAX_POINTS, resolution_s: float = RESOLUTION_S):
        if max_points < 2 or not resolution_s > 0:
            raise ValueError(f"need at least 2 points and a positive resolution; got {max_points}, {resolution_s}")
        self.max_points = max_points
        self.resolution_s = resolution_s
        self._buckets: list[int] = []
        self._bytes: list[int] = []

    def __len__(self) -> int:
        return len(self._buckets)

    def add(self, t_s: float, rss_bytes: int) -> None:
        """One sample; times must not go backwards (a monotonic clock's)."""
        bucket = int(max(t_s, 0.0) // self.resolution_s)
        if self._buckets and bucket <= self._buckets[-1]:
            self._bytes[-1] = max(self._bytes[-1], rss_bytes)
            return
        self._buckets.append(bucket)
        self._bytes.append(rss_bytes)
        while len(self._buckets) > self.max_points:
            self._coarsen()

    def _coarsen(self) -> None:
        """Double the bucket width: neighbours that now share a bucket keep their larger value."""
        buckets: list[int] = []
        values: list[int] = []
        for bucket, value in zip(self._buckets, self._bytes):
            half = bucket // 2
            if buckets and buckets[-1] == half:
                values[-1] = max(values[-1], value)
            else:
                buckets.append(half)
                values.append(value)
        self._buckets, self._bytes = buckets, values
        self.resolution_s *= 2

    def times_s(self) -> list[float]:
        """The start of each bucket, in seconds since the run began."""
        return [b * self.resolution_s for b in self._buckets]

    def values_bytes(self) -> list[int]:
        """The largest resident memory sampled in each bucket."""
        return list(self._bytes)
