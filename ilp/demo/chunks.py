"""The build's time chunks: the demo city is drawn and written a run of days at a time (about
``CHUNK_INCIDENTS`` incidents), so a build's memory does not grow with its size.

A chunk is a run of whole days. Each chunk draws from its own generator, spawned from the build's seed
(``np.random.SeedSequence(seed).spawn``), so what a chunk draws depends only on the seed and the chunk
layout, and the layout depends only on the build's parameters. What one chunk makes but a later one owns
(a near-repeat burglary a week on, a call received after midnight of the chunk's last day) waits in a
``Backlog`` until the chunk whose time it is; running numbers (``PM2025-000123``) carry on across chunks
through ``clock.YearSequence``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ilp.demo.clock import Clock

# Aim for about this many incidents per chunk: a chunk's arrays and frames take roughly 1.2 kB per incident
# while they are drawn and written (a few hundred MB), at any size. Fewer, larger chunks write faster.
CHUNK_INCIDENTS = 250_000


def chunk_days(clock: Clock, incidents_per_year: int, first_day: int) -> list[tuple[int, int]]:
    """The chunks as (first day, end day exclusive), covering ``first_day`` (before day 0 for the burn-in) to
    the last day. The first chunk also holds the burn-in days."""
    length = max(1, CHUNK_INCIDENTS * 364 // max(incidents_per_year, 1))
    ends = list(range(length, clock.n_days, length)) + [clock.n_days]
    starts = [first_day] + ends[:-1]
    return list(zip(starts, ends, strict=True))


def chunk_generators(seed: int, n_chunks: int) -> tuple[np.random.Generator, np.random.Generator, list]:
    """One generator for what is planned over the whole period, one for the survey, one per chunk."""
    plan, survey, chunks = np.random.SeedSequence(seed).spawn(3)
    return (
        np.random.Generator(np.random.PCG64(plan)),
        np.random.Generator(np.random.PCG64(survey)),
        [np.random.Generator(np.random.PCG64(s)) for s in chunks.spawn(n_chunks)],
    )


class Backlog:
    """Rows of a time-ordered table (calls, use of force) made by one chunk but timed in a later one: held
    until the chunk that reaches their time, so each table is written in time order and numbered in it."""

    def __init__(self, time_column: str):
        self.time_column = time_column
        self.held: pd.DataFrame | None = None

    def release(self, frame: pd.DataFrame, until: float) -> pd.DataFrame:
        """This chunk's new rows plus those held from earlier chunks, with time before ``until`` (epoch seconds);
        the rest are held."""
        if self.held is not None and len(self.held):
            frame = pd.concat([self.held, frame], ignore_index=True)
        due = frame[self.time_column].to_numpy() < until
        self.held = frame[~due].reset_index(drop=True)
        return frame[due].reset_index(drop=True)
