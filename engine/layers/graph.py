"""Graph attention across the stocks of one day over a kNN return-correlation graph."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_MASKED = -1.0e4  # finite "minus infinity": a row with no neighbour gets a uniform, finite softmax


@torch.no_grad()
def knn_neighbours(series: Tensor, mask: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """kNN by Pearson correlation within each day.

    series [D, M, T] (padded per day), mask [D, M] -> (index [D, M, 1 + k'], valid [D, M, 1 + k'])
    with k' = min(k, max_n - 1). Column 0 is the row itself (self loop); the other columns are
    the most positively correlated rows of the same day; a row of a day with n stocks has
    exactly min(k, n - 1) valid neighbours. Rows of different days are never neighbours.
    """
    n_days, max_n, _ = series.shape
    device = series.device
    self_idx = torch.arange(max_n, device=device).expand(n_days, max_n)[..., None]
    kk = min(k, max_n - 1)
    if kk <= 0:
        return self_idx, mask[..., None]
    s = series.float()
    s = s - s.mean(dim=-1, keepdim=True)
    s = s / (s.norm(dim=-1, keepdim=True) + 1e-8)
    corr = s @ s.transpose(1, 2)  # [D, M, M]
    pair_ok = mask[:, :, None] & mask[:, None, :]
    pair_ok &= ~torch.eye(max_n, dtype=torch.bool, device=device)[None]
    corr = corr.masked_fill(~pair_ok, float("-inf"))
    vals, idx = corr.topk(kk, dim=-1)
    valid = torch.isfinite(vals) & mask[..., None]
    return torch.cat([self_idx, idx], dim=-1), torch.cat([mask[..., None], valid], dim=-1)


class GraphAttentionLayer(nn.Module):
    """GAT layer on a neighbour list (gathered, O(rows x k)); residual + LayerNorm."""

    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.proj = nn.Linear(hidden, heads * self.head_dim, bias=False)
        self.att_src = nn.Parameter(torch.empty(heads, self.head_dim))
        self.att_dst = nn.Parameter(torch.empty(heads, self.head_dim))
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)
        self.out = nn.Linear(heads * self.head_dim, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: Tensor, index: Tensor, valid: Tensor) -> Tensor:
        """h [D, M, d], index/valid [D, M, K] -> [D, M, d]."""
        n_days, max_n, _ = h.shape
        k = index.shape[-1]
        z = self.proj(h).view(n_days, max_n, self.heads, self.head_dim)
        score_src = (z * self.att_src.to(z.dtype)).sum(-1)  # [D, M, Hh]
        score_dst = (z * self.att_dst.to(z.dtype)).sum(-1)
        offset = (torch.arange(n_days, device=h.device) * max_n)[:, None, None]
        flat = (index + offset).reshape(-1)
        z_nb = z.reshape(n_days * max_n, self.heads, self.head_dim)[flat]
        z_nb = z_nb.view(n_days, max_n, k, self.heads, self.head_dim)
        src_nb = score_src.reshape(n_days * max_n, self.heads)[flat].view(
            n_days, max_n, k, self.heads
        )
        e = F.leaky_relu(score_dst[:, :, None, :] + src_nb, 0.2).float()
        e = e.masked_fill(~valid[..., None], _MASKED)
        alpha = self.drop(torch.softmax(e, dim=2))  # over neighbours
        msg = (alpha[..., None] * z_nb.float()).sum(2).reshape(n_days, max_n, -1)
        return self.norm(h + self.drop(self.out(F.elu(msg))))
