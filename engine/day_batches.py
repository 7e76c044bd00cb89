"""The indexed panel and the datasets whose items are batches of whole trading days."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


@dataclass
class Panel:
    """Feature rows in file order plus a (day, stock) -> row map; nothing dense in D x N x F.

    A (day, stock) cell is flat = day * n_stocks + stock. Absent cells map to the last row of x,
    which is all zeros (the scaled value of NaN), so sequences gather without any masking.
    """

    x: torch.Tensor  # [R + 1, F] float32 scaled features, row R = zeros
    row_of: torch.Tensor  # [D * N] int64 flat cell -> row of x (R where absent)
    y: torch.Tensor  # [R, H] float32 raw targets, NaN where missing
    n_days: int
    n_stocks: int
    sector: torch.Tensor | None  # [R] int64 dense sector id, -1 where unknown
    n_sectors: int
    beta: torch.Tensor | None  # [D * N] float32 market beta from past returns

    @property
    def n_exposures(self) -> int:
        """Columns of the exposures matrix."""
        return (self.n_sectors if self.sector is not None else 0) + (self.beta is not None)


class DayBatchDataset(Dataset):
    """Map-style dataset: item i is batch i, a dict of whole trading days (see docs/design.md)."""

    def __init__(self, panel: Panel, day: np.ndarray, stock: np.ndarray, day_starts: np.ndarray,
                 seq_len: int, name: str, order: np.ndarray | None = None) -> None:
        """Samples (day, stock) sorted by day; batch b holds the days day_starts[b]:day_starts[b+1]
        of the split's days taken in `order` (positions into the sorted days; None: calendar order).

        Every sample needs day >= seq_len - 1 (a full history window inside the panel)."""
        self.panel, self.seq_len, self.name = panel, seq_len, name
        per_day = np.bincount(day) if len(day) else np.zeros(0, dtype=np.int64)
        days = np.nonzero(per_day)[0]  # day is sorted: this is np.unique without the sort
        self.days = days  # global day indices in this split, in calendar order
        if order is not None:  # regroup the samples so the ordered days are contiguous
            rank = np.empty(len(days), dtype=np.int64)
            rank[order] = np.arange(len(days))
            perm = np.argsort(rank[np.repeat(np.arange(len(days)), per_day[days])], kind="stable")
            day, stock, days = day[perm], stock[perm], days[order]
        counts = per_day[days]
        offsets = np.concatenate([[0], np.cumsum(counts)])
        self.bounds = offsets[day_starts].astype(np.int64)  # sample offsets of the batches
        day_pos = np.repeat(np.arange(len(days)), counts)
        batch_of_day = np.repeat(np.arange(len(day_starts) - 1), np.diff(day_starts))
        local = day_pos - day_starts[:-1][batch_of_day[day_pos]] if len(day_pos) else day_pos
        self.day = torch.from_numpy(day.astype(np.int64))
        self.stock = torch.from_numpy(stock.astype(np.int64))
        self.local_day = torch.from_numpy(local.astype(np.int64))
        self.flat = self.day * panel.n_stocks + self.stock
        self.row = panel.row_of.index_select(0, self.flat)  # every sample exists: a real row
        self._lag = torch.arange(seq_len - 1, -1, -1, dtype=torch.int64) * panel.n_stocks

    @property
    def n_days(self) -> int:
        """Trading days in this split (after dropping small days)."""
        return len(self.days)

    def __len__(self) -> int:
        """Number of batches."""
        return len(self.bounds) - 1

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        """Batch i: x [B, L, F], y [B, H], day [B], stock [B], exposures [B, E] (if any)."""
        if not 0 <= i < len(self):
            raise IndexError(i)
        s, e = int(self.bounds[i]), int(self.bounds[i + 1])
        p, flat, row = self.panel, self.flat[s:e], self.row[s:e]
        cells = (flat[:, None] - self._lag[None, :]).reshape(-1)  # oldest day first
        x = p.x.index_select(0, p.row_of.index_select(0, cells)).view(e - s, self.seq_len, -1)
        out = {"x": x, "y": p.y.index_select(0, row), "day": self.local_day[s:e],
               "stock": self.stock[s:e]}
        parts = []
        if p.sector is not None:
            sec = p.sector.index_select(0, row)
            onehot = torch.nn.functional.one_hot(sec.clamp(min=0), p.n_sectors)
            parts.append((onehot * (sec >= 0)[:, None]).float())
        if p.beta is not None:
            parts.append(p.beta.index_select(0, flat)[:, None])
        if parts:
            out["exposures"] = torch.cat(parts, dim=1)
        return out


def pack_days(counts: np.ndarray, batch_rows: int) -> np.ndarray:
    """Greedy packing of consecutive days into batches of ~batch_rows; returns day start indices."""
    starts, acc = [0], 0
    for i, c in enumerate(counts.tolist()):
        if acc and acc + c > batch_rows:
            starts.append(i)
            acc = 0
        acc += c
    starts.append(len(counts))
    return np.asarray(starts if len(counts) else [0], dtype=np.int64)


def interleave_days(counts: np.ndarray, batch_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Batches of ~batch_rows whose days are spread across the calendar: (order, day starts).

    Consecutive days' multi-day targets overlap (the 20-day returns of neighbouring days are ~95%
    the same), so a batch of neighbours is one noisy sample at long horizons. With ~n_batches
    batches, position p goes to group p mod n_batches, groups are packed greedily, and each batch
    lists its days in calendar order. `order` holds positions into counts; starts index into order.
    """
    n_batches = max(1, -(-int(counts.sum()) // max(batch_rows, 1)))
    pos = np.arange(len(counts))
    order = np.lexsort((pos, pos % n_batches))
    starts = pack_days(counts[order], batch_rows)
    batch = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    return order[np.lexsort((order, batch))], starts


def make_loader(dataset: Dataset, shuffle: bool, num_workers: int = 0) -> DataLoader:
    """A DataLoader over whole-day batches (batch_size=None: the dataset already batches)."""
    return DataLoader(dataset, batch_size=None, shuffle=shuffle, num_workers=num_workers,
                      persistent_workers=num_workers > 0)
