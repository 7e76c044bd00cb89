"""Per-trading-day grouping: flat batch rows <-> dense padded [n_days, max_n, ...] tensors."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class DayLayout:
    """Where each batch row sits in the padded [n_days, max_n] view."""

    n_days: int
    max_n: int
    row_day: Tensor  # [B] dense day index 0..n_days-1
    row_pos: Tensor  # [B] position of the row inside its day
    counts: Tensor  # [n_days] rows per day
    mask: Tensor  # [n_days, max_n] True where a real row sits

    @property
    def flat_index(self) -> Tensor:
        """Index of each row in the flattened [n_days * max_n] view."""
        return self.row_day * self.max_n + self.row_pos


def day_layout(day: Tensor) -> DayLayout:
    """Group rows by their `day` value (any order, any integer labels)."""
    day = day.reshape(-1)
    b = day.numel()
    if b == 0:
        empty = day.new_zeros(0)
        return DayLayout(
            0, 0, empty, empty, empty, torch.zeros(0, 0, dtype=torch.bool, device=day.device)
        )
    _, row_day = torch.unique(day, return_inverse=True)
    counts = torch.bincount(row_day)
    n_days = counts.numel()
    order = torch.argsort(row_day, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    row_pos = torch.empty_like(row_day)
    row_pos[order] = torch.arange(b, device=day.device) - starts[row_day[order]]
    max_n = int(counts.max().item())
    mask = torch.arange(max_n, device=day.device)[None, :] < counts[:, None]
    return DayLayout(n_days, max_n, row_day, row_pos, counts, mask)


def pad(values: Tensor, layout: DayLayout, fill: float = 0.0) -> Tensor:
    """Flat [B, ...] -> padded [n_days, max_n, ...] (differentiable; padding holds `fill`)."""
    rest = values.shape[1:]
    out = values.new_full((layout.n_days * layout.max_n, *rest), fill)
    out = out.index_copy(0, layout.flat_index, values)
    return out.view(layout.n_days, layout.max_n, *rest)


def unpad(padded: Tensor, layout: DayLayout) -> Tensor:
    """Padded [n_days, max_n, ...] -> flat [B, ...] in the original row order."""
    rest = padded.shape[2:]
    return padded.reshape(layout.n_days * layout.max_n, *rest)[layout.flat_index]
