"""Per-trading-day multi-horizon losses (Huber, Sharpe, RankIC, CS-IC and optional terms).

Every term works on a padded [n_days, max_n, H] view of the batch (engine.layers.day_groups):
targets are z-scored per day and horizon over their non-NaN rows, each term is computed per
(day, horizon) cell, averaged over the usable days of each horizon, and the horizons are combined
by `horizon_weights`. A (day, horizon) cell is usable when it has >= 2 valid targets that are not
all equal. Formulas: docs/metrics.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.config import LossConfig
from engine.layers.day_groups import DayLayout, day_layout, pad

VAR_EPS = 1e-8  # added to variances under square roots (keeps gradients finite at zero spread)
SOFT_RANK_TAU = 0.1  # soft-rank temperature, in units of the day's prediction std
RANK_REF_MAX = 512  # days larger than this rank against a random subset of reference rows
RANKNET_FULL_MAX = 256  # days larger than this use RANKNET_PAIRS sampled pairs
RANKNET_PAIRS = 4096
_NEG = -1.0e4  # finite "minus infinity" for masked softmax logits


@dataclass(frozen=True)
class DayBatch:
    """A batch viewed per trading day: padded predictions, z-scored targets and masks."""

    layout: DayLayout
    pred: Tensor  # [D, M, H] float32 (padding 0)
    y_raw: Tensor  # [D, M, H] raw targets, 0 where missing
    y_z: Tensor  # [D, M, H] per-day z-scored targets, 0 where missing
    mask: Tensor  # [D, M, H] valid target in a usable cell
    usable: Tensor  # [D, H] cell has >= 2 valid, non-constant targets
    row_mask: Tensor  # [D, M] real rows


def _masked_mean(v: Tensor, m: Tensor, dim: int = 1) -> Tensor:
    return (v * m).sum(dim) / m.sum(dim).clamp(min=1)


def _masked_std(v: Tensor, m: Tensor, mean: Tensor) -> Tensor:
    """Population std over dim 1 (mean already reduced over dim 1)."""
    var = _masked_mean((v - mean.unsqueeze(1)) ** 2, m)
    return torch.sqrt(var + VAR_EPS)


def day_batch(pred: Tensor, y: Tensor, day: Tensor) -> DayBatch:
    """Group a flat batch (pred/y [B, H], day [B]) by day and z-score the targets per day."""
    layout = day_layout(day)
    p = pad(pred.float(), layout)
    valid = pad(~torch.isnan(y), layout, fill=False) & layout.mask[..., None]
    y_raw = pad(torch.nan_to_num(y.float(), nan=0.0), layout) * valid
    vf = valid.float()
    n = vf.sum(1)
    mean = _masked_mean(y_raw, vf)
    var = _masked_mean((y_raw - mean.unsqueeze(1)) ** 2, vf)
    usable = (n >= 2) & (var > 1e-20)
    mask = valid & usable.unsqueeze(1)
    y_z = torch.where(mask, (y_raw - mean.unsqueeze(1)) / torch.sqrt(var + 1e-30).unsqueeze(1), 0.0)
    return DayBatch(layout, p, y_raw * mask, y_z, mask, usable, layout.mask)


def day_mean(per_day: Tensor, usable: Tensor) -> Tensor:
    """[D, H] per-day values -> [H] mean over usable days (0 where a horizon has none)."""
    u = usable.float()
    return torch.where(usable, per_day, 0.0).sum(0) / u.sum(0).clamp(min=1)


def _zscore(v: Tensor, m: Tensor) -> Tensor:
    mf = m.float()
    mean = _masked_mean(v, mf)
    return (v - mean.unsqueeze(1)) / _masked_std(v, mf, mean).unsqueeze(1) * mf


def huber_term(b: DayBatch, delta: float) -> Tensor:
    """[H]: per-day mean Huber(pred - z(target)), averaged over days."""
    err = F.huber_loss(b.pred, b.y_z, reduction="none", delta=delta)
    return day_mean(_masked_mean(err, b.mask.float()), b.usable)


def portfolio_returns(b: DayBatch) -> Tensor:
    """[D, H]: each day's return sum_i w_i z_i with w = p / sum|p| (z-scored targets)."""
    mf = b.mask.float()
    gross = (b.pred.abs() * mf).sum(1) + 1e-8
    return (b.pred * b.y_z * mf).sum(1) / gross


def sharpe_term(b: DayBatch) -> tuple[Tensor, Tensor]:
    """([H] -Sharpe over days of the daily portfolio returns (std ddof=1), [H] has >= 2 days)."""
    r = portfolio_returns(b)
    u = b.usable.float()
    n = u.sum(0)
    mean = (r * u).sum(0) / n.clamp(min=1)
    var = (((r - mean) ** 2) * u).sum(0) / (n - 1).clamp(min=1)
    present = n >= 2
    return torch.where(present, -mean / torch.sqrt(var + VAR_EPS), 0.0), present


def _pearson(a: Tensor, c: Tensor, m: Tensor) -> Tensor:
    """[D, H] per-day Pearson correlation over masked rows (dim 1)."""
    return (_zscore(a, m) * _zscore(c, m)).sum(1) / m.float().sum(1).clamp(min=1)


def _reference_rows(b: DayBatch) -> Tensor | None:
    """[D, S] positions of random reference rows per day, or None to rank against every row."""
    lay = b.layout
    if lay.max_n <= RANK_REF_MAX:
        return None
    u = torch.rand(lay.n_days, RANK_REF_MAX, device=b.pred.device)
    return (u * lay.counts[:, None]).long().clamp(max=lay.max_n - 1)


def _gather_rows(v: Tensor, ref: Tensor | None) -> Tensor:
    if ref is None:
        return v
    return v.gather(1, ref[..., None].expand(-1, -1, v.shape[-1]))


def soft_rank(b: DayBatch, ref: Tensor | None = None) -> Tensor:
    """[D, M, H] differentiable rank: sum_j sigmoid((z_i - z_j) / tau) over the day's rows j."""
    pz = _zscore(b.pred, b.mask)
    diff = (pz.unsqueeze(2) - _gather_rows(pz, ref).unsqueeze(1)) / SOFT_RANK_TAU  # [D, M, S, H]
    return (torch.sigmoid(diff) * _gather_rows(b.mask.float(), ref).unsqueeze(1)).sum(2)


def hard_rank(v: Tensor, m: Tensor, ref: Tensor | None = None) -> Tensor:
    """[D, M, H] average rank (ties share their mean rank, 1-based up to a shift) per day."""
    vr = _gather_rows(v, ref).unsqueeze(1)
    mr = _gather_rows(m.float(), ref).unsqueeze(1)
    vi = v.unsqueeze(2)
    return (((vr < vi).float() + 0.5 * (vr == vi).float()) * mr).sum(2) + 0.5


def rankic_term(b: DayBatch) -> Tensor:
    """[H]: 1 - Pearson(soft_rank(pred), rank(target)) per day, averaged over days."""
    ref = _reference_rows(b)
    ic = _pearson(soft_rank(b, ref), hard_rank(b.y_z, b.mask, ref), b.mask)
    return day_mean(1.0 - ic, b.usable)


def cs_ic_term(b: DayBatch) -> Tensor:
    """[H]: 1 - mean_i z(pred)_i z(target)_i per day, averaged over days."""
    return day_mean(1.0 - _pearson(b.pred, b.y_z, b.mask), b.usable)


def variance_floor_term(b: DayBatch, min_std: float) -> Tensor:
    """[H]: relu(min_std - std_day(pred))^2 per day, averaged over days."""
    mf = b.mask.float()
    std = _masked_std(b.pred, mf, _masked_mean(b.pred, mf))
    return day_mean(torch.relu(min_std - std) ** 2, b.usable)


def listnet_term(b: DayBatch, temperature: float) -> Tensor:
    """[H]: cross-entropy between softmax(z(target)/T) and softmax(pred/T) over each day's rows."""
    target = torch.softmax(torch.where(b.mask, b.y_z / temperature, _NEG), dim=1)
    logp = torch.log_softmax(torch.where(b.mask, b.pred / temperature, _NEG), dim=1)
    return day_mean(-(target * logp * b.mask).sum(1), b.usable)


def _pair_positions(b: DayBatch) -> tuple[Tensor, Tensor]:
    """[D, P] row positions i, j: every pair, or RANKNET_PAIRS random pairs for large days."""
    lay, dev = b.layout, b.pred.device
    if lay.max_n <= RANKNET_FULL_MAX:
        ii, jj = torch.meshgrid(
            torch.arange(lay.max_n, device=dev), torch.arange(lay.max_n, device=dev), indexing="ij"
        )
        return ii.reshape(1, -1).expand(lay.n_days, -1), jj.reshape(1, -1).expand(lay.n_days, -1)
    u = torch.rand(2, lay.n_days, RANKNET_PAIRS, device=dev)
    pos = (u * lay.counts[None, :, None]).long().clamp(max=lay.max_n - 1)
    return pos[0], pos[1]


def ranknet_term(b: DayBatch) -> Tensor:
    """[H]: mean over ordered pairs (y_i > y_j) of softplus(-(p_i - p_j)) per day."""
    i, j = _pair_positions(b)
    h = b.pred.shape[-1]

    def take(v: Tensor, pos: Tensor) -> Tensor:
        return v.gather(1, pos[..., None].expand(-1, -1, h))

    s = (
        torch.sign(take(b.y_z, i) - take(b.y_z, j))
        * take(b.mask.float(), i)
        * take(b.mask.float(), j)
    )
    loss = F.softplus(-s * (take(b.pred, i) - take(b.pred, j))) * s.abs()
    per_day = loss.sum(1) / s.abs().sum(1).clamp(min=1)
    return day_mean(per_day, b.usable & (s.abs().sum(1) > 0))


def exposure_term(b: DayBatch, exposures: Tensor) -> tuple[Tensor, Tensor]:
    """([H] mean over exposure columns of corr(pred, column)^2 per day, [D] usable days)."""
    e = pad(torch.nan_to_num(exposures.float()), b.layout)  # [D, M, E]
    m = b.row_mask.float()[..., None]
    n = m.sum(1).clamp(min=1)  # [D, 1]
    pc = (b.pred - (b.pred * m).sum(1, keepdim=True) / n[:, None]) * m
    ec = (e - (e * m).sum(1, keepdim=True) / n[:, None]) * m
    p_var, e_var = (pc**2).sum(1) / n, (ec**2).sum(1) / n  # [D, H], [D, E]
    cov = torch.einsum("dmh,dme->dhe", pc, ec) / n[..., None]
    col_ok = (e_var > 1e-12)[:, None, :].float()  # columns constant on the day are skipped
    corr2 = cov**2 / ((p_var + VAR_EPS)[..., None] * (e_var + VAR_EPS)[:, None, :])
    per_day = (corr2 * col_ok).sum(-1) / col_ok.sum(-1).clamp(min=1)  # [D, H]
    day_ok = (b.layout.counts >= 2) & (col_ok.sum(-1)[:, 0] > 0)
    return day_mean(per_day, day_ok[:, None].expand_as(per_day)), day_ok


def turnover_term(b: DayBatch, prev: Tensor, seen: Tensor) -> Tensor:
    """[H]: mean |pred - previous EMA of the stock's predictions| per day over seen stocks."""
    prev_p = pad(prev.float(), b.layout)  # [D, M, H]
    seen_p = pad(seen, b.layout, fill=False) & b.row_mask  # [D, M]
    per_day = _masked_mean((b.pred - prev_p).abs(), seen_p.float()[..., None])
    day_ok = seen_p.any(1)[:, None].expand_as(per_day)
    return day_mean(per_day, day_ok)


def pinball_term(b: DayBatch, quantiles: Tensor, levels: Tensor) -> Tensor:
    """[H]: pinball loss of quantile outputs [B, H, Q] vs z(target), mean over Q and rows per day."""
    q = pad(quantiles.float(), b.layout)  # [D, M, H, Q]
    diff = b.y_z.unsqueeze(-1) - q
    loss = torch.maximum(levels * diff, (levels - 1.0) * diff).mean(-1)
    return day_mean(_masked_mean(loss, b.mask.float()), b.usable)


def combine_horizons(per_h: Tensor, present: Tensor, weights: Tensor) -> Tensor:
    """Weighted mean over the horizons that have data: sum w_h L_h / sum w_h."""
    w = weights * present.float()
    return (torch.where(present, per_h, 0.0) * w).sum() / w.sum().clamp(min=1e-12)


class MultiHorizonLoss(nn.Module):
    """Weighted sum of the per-day terms; forward(out, y, day, stock, exposures) -> (total, parts)."""

    horizon_weights: Tensor
    quantile_levels: Tensor
    pred_ema: Tensor
    pred_seen: Tensor

    def __init__(
        self, cfg: LossConfig, horizons: list[int], quantiles: list[float], n_stocks: int
    ) -> None:
        super().__init__()
        if len(cfg.horizon_weights) != len(horizons):
            raise ValueError(
                f"loss.horizon_weights has {len(cfg.horizon_weights)} values for {len(horizons)} horizons"
            )
        self.cfg = cfg
        self.horizons = list(horizons)
        self.register_buffer(
            "horizon_weights", torch.tensor(cfg.horizon_weights, dtype=torch.float32)
        )
        self.register_buffer(
            "quantile_levels", torch.tensor(sorted(quantiles), dtype=torch.float32)
        )
        # Turnover state: EMA of each stock's predictions, checkpointed so a resumed run keeps it.
        self.register_buffer("pred_ema", torch.zeros(max(n_stocks, 1), len(horizons)))
        self.register_buffer("pred_seen", torch.zeros(max(n_stocks, 1), dtype=torch.bool))

    def describe(self) -> str:
        """The text logged after `[LOSS-PER-DAY] enabled: `."""
        c = self.cfg
        extra = [
            f"{name}={w}"
            for name, w in (
                ("listnet", c.listnet_weight),
                ("ranknet", c.ranknet_weight),
                ("exposure", c.exposure_weight),
                ("turnover", c.turnover_weight),
                ("quantile", c.quantile_weight),
                ("var_floor", c.variance_floor_weight if c.variance_floor > 0 else 0.0),
            )
            if w > 0
        ]
        return (
            "Sharpe/RankIC/CS-IC/Huber computed per trading day (group_day); weights "
            f"sharpe={c.sharpe_weight} rankic={c.rankic_weight} cs_ic={c.cs_ic_weight} huber={c.huber_weight}"
            + (" " + " ".join(extra) if extra else "")
        )

    def forward(
        self,
        out: dict[str, Tensor],
        y: Tensor,
        day: Tensor,
        stock: Tensor,
        exposures: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Total loss (finite, differentiable) and its unweighted parts (detached scalars)."""
        c = self.cfg
        pred = out["pred"].float()
        b = day_batch(pred, y, day)
        has_day = b.usable.any(0)  # [H]
        terms: dict[str, tuple[Tensor, Tensor, float]] = {
            "huber": (huber_term(b, c.huber_delta), has_day, c.huber_weight),
            "sharpe": (*sharpe_term(b), c.sharpe_weight),
            "rankic": (rankic_term(b), has_day, c.rankic_weight),
            "cs_ic": (cs_ic_term(b), has_day, c.cs_ic_weight),
        }
        if c.variance_floor > 0:
            terms["var_floor"] = (
                variance_floor_term(b, c.variance_floor),
                has_day,
                c.variance_floor_weight,
            )
        if c.listnet_weight > 0:
            terms["listnet"] = (listnet_term(b, c.listnet_temperature), has_day, c.listnet_weight)
        if c.ranknet_weight > 0:
            terms["ranknet"] = (ranknet_term(b), has_day, c.ranknet_weight)
        if c.exposure_weight > 0 and exposures is not None and exposures.shape[-1] > 0:
            value, day_ok = exposure_term(b, exposures)
            terms["exposure"] = (value, day_ok.any().expand_as(value), c.exposure_weight)
        if c.turnover_weight > 0:
            seen = self.pred_seen[stock]
            value = turnover_term(b, self.pred_ema[stock], seen)
            terms["turnover"] = (value, seen.any().expand_as(value), c.turnover_weight)
            if self.training:
                self._update_ema(pred.detach(), stock)
        if c.quantile_weight > 0 and "quantiles" in out and self.quantile_levels.numel() > 0:
            value = pinball_term(b, out["quantiles"], self.quantile_levels)
            terms["quantile"] = (value, has_day, c.quantile_weight)

        total = pred.sum() * 0.0  # keeps the graph (and a finite value) when nothing is usable
        parts: dict[str, Tensor] = {}
        for name, (per_h, present, weight) in terms.items():
            value = combine_horizons(per_h, present, self.horizon_weights)
            parts[name] = value.detach()
            if weight > 0:
                total = total + weight * value
        return total, parts

    @torch.no_grad()
    def _update_ema(self, pred: Tensor, stock: Tensor) -> None:
        """EMA of each stock's prediction; a stock seen on several days of the batch uses its mean."""
        n, h = self.pred_ema.shape
        sums = torch.zeros(n, h, device=pred.device).index_add_(0, stock, pred)
        counts = torch.zeros(n, device=pred.device).index_add_(
            0, stock, torch.ones_like(pred[:, 0])
        )
        hit = counts > 0
        mean = sums / counts.clamp(min=1)[:, None]
        beta = self.cfg.turnover_ema
        blended = torch.where(
            self.pred_seen[:, None], beta * self.pred_ema + (1 - beta) * mean, mean
        )
        self.pred_ema.copy_(torch.where(hit[:, None], blended, self.pred_ema))
        self.pred_seen |= hit
