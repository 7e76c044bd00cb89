"""Multi-horizon prediction heads: a shared block, one head per horizon, optional quantiles."""

from __future__ import annotations

import math
from statistics import NormalDist

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _inverse_softplus(x: float) -> float:
    return x + math.log(-math.expm1(-x))


class HorizonHead(nn.Module):
    """One horizon: residual MLP scaled by LayerScale, optional LayerNorm, output layer(s)."""

    def __init__(
        self,
        hidden: int,
        dropout: float,
        layer_scale: float,
        layer_norm: bool,
        output_init_std: float,
        quantiles: list[float],
    ) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout))
        self.gamma = nn.Parameter(torch.full((hidden,), float(layer_scale)))
        self.norm: nn.Module = nn.LayerNorm(hidden) if layer_norm else nn.Identity()
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, 1)
        nn.init.normal_(self.out.weight, std=output_init_std)
        nn.init.zeros_(self.out.bias)
        self.q_out: nn.Linear | None = None
        if quantiles:
            self.q_out = nn.Linear(hidden, len(quantiles))
            nn.init.normal_(self.q_out.weight, std=output_init_std)
            # Start at the standard-normal quantiles (targets are z-scored per day).
            z = [NormalDist().inv_cdf(q) for q in sorted(quantiles)]
            bias = [z[0]] + [
                _inverse_softplus(max(b - a, 1e-3)) for a, b in zip(z, z[1:], strict=False)
            ]
            with torch.no_grad():
                self.q_out.bias.copy_(torch.tensor(bias))

    def forward(self, s: Tensor) -> tuple[Tensor, Tensor | None]:
        """s [B, d] -> (point [B], quantiles [B, Q] non-decreasing, or None)."""
        h = s + self.gamma.to(s.dtype) * self.mlp(s)
        h = self.drop(self.norm(h))
        point = self.out(h).squeeze(-1)
        if self.q_out is None:
            return point, None
        raw = self.q_out(h).float()
        steps = F.softplus(raw[:, 1:])
        q = torch.cat([raw[:, :1], raw[:, :1] + torch.cumsum(steps, dim=-1)], dim=-1)
        return point, q


class MultiHorizonPredictionHeads(nn.Module):
    """Shared block + one HorizonHead per horizon; outputs are in per-day z units."""

    def __init__(
        self,
        hidden: int,
        horizons: list[int],
        dropout: float,
        layer_scale: float,
        layer_norm: bool,
        output_init_std: float,
        quantiles: list[float],
    ) -> None:
        super().__init__()
        self.horizons = list(horizons)
        self.quantiles = sorted(quantiles)
        layers: list[nn.Module] = [nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout)]
        if layer_norm:
            layers.append(nn.LayerNorm(hidden))
        self.shared = nn.Sequential(*layers)
        self.heads = nn.ModuleList(
            HorizonHead(hidden, dropout, layer_scale, layer_norm, output_init_std, self.quantiles)
            for _ in self.horizons
        )

    def forward(self, z: Tensor) -> dict[str, Tensor]:
        """z [B, d] -> {"pred": [B, H], "quantiles": [B, H, Q] when quantiles are on}."""
        s = self.shared(z)
        outs = [head(s) for head in self.heads]
        result = {"pred": torch.stack([p for p, _ in outs], dim=1)}
        if self.quantiles:
            result["quantiles"] = torch.stack([q for _, q in outs if q is not None], dim=1)
        return result
