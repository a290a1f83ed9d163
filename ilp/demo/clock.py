"""The demo data's time frame: days numbered from the first day of the data, epoch seconds, and the
per-year running numbers that source ids are made from (carried across the build's chunks)."""

from __future__ import annotations

import datetime as dt

import numpy as np


class Clock:
    """Days are numbered from the first day of the data (0) to n_days - 1 (end_date)."""

    def __init__(self, start_date: dt.date, end_date: dt.date):
        self.start_date, self.end_date = start_date, end_date
        self.n_days = (end_date - start_date).days + 1
        self.epoch_seconds = int(np.datetime64(start_date, "s").astype(np.int64))
        self.end_seconds = self.epoch_seconds + self.n_days * 86400 - 1  # 23:59:59 on end_date

    def dates(self, first_day: int = 0) -> np.ndarray:
        return np.datetime64(self.start_date, "D") + np.arange(first_day, self.n_days)

    def date_of(self, day: int) -> dt.date:
        return self.start_date + dt.timedelta(days=int(day))


def year_and_seq(seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Calendar year of each (sorted) timestamp and its running number within that year, from 1."""
    year = seconds.astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64) + 1970
    if not len(year):
        return year, year.copy()
    starts = np.r_[0, np.flatnonzero(np.diff(year)) + 1]
    seq = np.arange(len(year)) - np.repeat(starts, np.diff(np.r_[starts, len(year)])) + 1
    return year, seq


class YearSequence:
    """Running numbers within the calendar year, carried across chunks: each call takes the next timestamps
    (sorted, none earlier than the last call's) and gives their year and number within it, from 1."""

    def __init__(self):
        self.year, self.count = None, 0

    def number(self, seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        year, seq = year_and_seq(seconds)
        if not len(year):
            return year, seq
        if year[0] == self.year:  # the first run continues the year the last call ended in
            seq[year == self.year] += self.count
        self.year, self.count = int(year[-1]), int(seq[-1])
        return year, seq


def timestamps(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds to datetime64[s]; negative means missing (NaT, written as NULL)."""
    return np.where(seconds < 0, np.datetime64("NaT"), seconds.astype("datetime64[s]"))
