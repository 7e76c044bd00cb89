"""OnlineRobustScaler: median / MAD from a reservoir sample of rows, clipped robust z-scores."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

MAD_TO_STD = 1.4826
MIN_SCALE = 1e-9  # a MAD x 1.4826 below this is treated as zero: the scale becomes 1


def _nan_median(a: np.ndarray) -> np.ndarray:
    """Per-row median of a [F, n] ignoring NaN; NaN for an all-NaN row."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        return np.nanmedian(a, axis=1)


class OnlineRobustScaler:
    """Robust per-feature scaling: (x - median) / (MAD x 1.4826), clipped to +-clip, NaN -> 0."""

    def __init__(self, max_samples: int = 65536, clip: float = 5.0, seed: int = 0) -> None:
        """A scaler whose reservoir keeps at most max_samples rows (seeded)."""
        if max_samples <= 0:
            raise ValueError("max_samples must be positive")
        self.max_samples = int(max_samples)
        self.clip = float(clip)
        self.seed = int(seed)
        self.reset()

    def reset(self) -> None:
        """Forget everything seen."""
        self._rng = np.random.default_rng(self.seed)
        self._reservoir: np.ndarray | None = None
        self._filled = 0
        self.n_seen = 0
        self._median: np.ndarray | None = None
        self._scale: np.ndarray | None = None

    @property
    def n_finite(self) -> np.ndarray:
        """Finite values per feature in the reservoir."""
        if self._reservoir is None:
            raise RuntimeError("OnlineRobustScaler is not fitted")
        return np.isfinite(self._reservoir[: self._filled]).sum(axis=0)

    @property
    def median_(self) -> np.ndarray:
        """Per-feature median (float32)."""
        if self._median is None:
            self._finalise()
        assert self._median is not None
        return self._median

    @property
    def scale_(self) -> np.ndarray:
        """Per-feature MAD x 1.4826, or 1 where that is ~0 (float32)."""
        if self._scale is None:
            self._finalise()
        assert self._scale is not None
        return self._scale

    @property
    def n_samples(self) -> int:
        """Rows held in the reservoir."""
        return self._filled

    def partial_fit(self, x: np.ndarray, rows: np.ndarray | None = None) -> OnlineRobustScaler:
        """Stream rows of x [n, F] (or only x[rows]) through the reservoir (Algorithm R, vectorised)."""
        idx = np.arange(len(x)) if rows is None else np.asarray(rows, dtype=np.int64)
        if self._reservoir is None:
            self._reservoir = np.full((self.max_samples, x.shape[1]), np.nan, dtype=np.float32)
        elif self._reservoir.shape[1] != x.shape[1]:
            raise ValueError(f"expected {self._reservoir.shape[1]} features, got {x.shape[1]}")
        k, m = self.max_samples, len(idx)
        take = min(k - self._filled, m)  # fill phase
        if take > 0:
            self._reservoir[self._filled : self._filled + take] = x[idx[:take]]
            self._filled += take
        rest = idx[take:]
        if len(rest):
            # item number i (0-based over everything seen) replaces slot j ~ U[0, i] when j < k
            i = self.n_seen + take + np.arange(len(rest))
            j = (self._rng.random(len(rest)) * (i + 1)).astype(np.int64)
            hit = np.nonzero(j < k)[0]
            # the last write to a slot is the one that survives
            slots_rev, first_rev = np.unique(j[hit][::-1], return_index=True)
            src = rest[hit[::-1][first_rev]]
            self._reservoir[slots_rev] = x[src]
        self.n_seen += m
        self._median = self._scale = None  # recomputed on first use
        return self

    def fit(self, x: np.ndarray, rows: np.ndarray | None = None) -> OnlineRobustScaler:
        """Reset, then sample rows of x (or x[rows]) and compute median and MAD."""
        self.reset()
        return self.partial_fit(x, rows)

    def _finalise(self) -> None:
        if self._reservoir is None:
            raise RuntimeError("OnlineRobustScaler is not fitted")
        sample = np.ascontiguousarray(self._reservoir[: self._filled].T)  # [F, n]
        med = _nan_median(sample)
        mad = _nan_median(np.abs(sample - med[:, None].astype(np.float32))) * MAD_TO_STD
        scale = np.where(np.isfinite(mad) & (mad > MIN_SCALE), mad, 1.0)
        self._median = np.nan_to_num(med).astype(np.float32)
        self._scale = scale.astype(np.float32)

    def transform_(self, x: torch.Tensor) -> torch.Tensor:
        """Scale a float32 tensor [..., F] in place (multithreaded); returns it."""
        x.sub_(torch.from_numpy(self.median_)).mul_(torch.from_numpy(1.0 / self.scale_))
        return x.clamp_(-self.clip, self.clip).nan_to_num_(0.0)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """A scaled float32 copy of x [..., F]."""
        t = torch.from_numpy(np.array(x, dtype=np.float32, copy=True))
        return self.transform_(t).numpy()

    def state_dict(self) -> dict[str, Any]:
        """The fitted statistics (for checkpoints)."""
        return {"median": self.median_, "scale": self.scale_, "clip": self.clip, "n_seen": self.n_seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore statistics saved by state_dict()."""
        self._median = np.asarray(state["median"], dtype=np.float32)
        self._scale = np.asarray(state["scale"], dtype=np.float32)
        self.clip = float(state["clip"])
        self.n_seen = int(state["n_seen"])
