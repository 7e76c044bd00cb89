"""Per-row sequence blocks: variable selection, LSTM + self-attention encoder, FAN."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class VariableSelection(nn.Module):
    """Per-feature softmax gates from a small MLP; uniform gates leave the features unchanged."""

    def __init__(self, n_features: int, hidden: int) -> None:
        super().__init__()
        self.n_features = n_features
        self.gate = nn.Sequential(
            nn.Linear(n_features, hidden), nn.ELU(), nn.Linear(hidden, n_features)
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x [B, L, F] -> (gated x [B, L, F], gate weights [B, L, F] summing to 1 over F)."""
        weights = torch.softmax(self.gate(x).float(), dim=-1)
        return x * (weights * self.n_features).to(x.dtype), weights


class InputProjection(nn.Module):
    """Per-time-step projection F -> d: a linear map plus a residual GELU MLP.

    A purely linear projection hands the LSTM only linear combinations of the features, so an
    even (U-shaped) dependence on a feature must be built later from LayerNormed, mixed states;
    the MLP branch gives each day's features a nonlinear embedding before the recurrent part
    (TFT-style gated residual projection, without the gate). Its last layer starts small, so at
    init the block behaves like the linear projection. (Added together with other fixes; its own
    share of the IC gain was not measured separately.)
    """

    def __init__(self, n_features: int, hidden: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features, hidden)
        first, out = nn.Linear(n_features, hidden), nn.Linear(hidden, hidden)  # creation order = RNG order
        nn.init.normal_(out.weight, std=0.02)
        nn.init.zeros_(out.bias)
        self.mlp = nn.Sequential(first, nn.GELU(), out)

    def forward(self, x: Tensor) -> Tensor:
        """x [B, L, F] -> [B, L, d]."""
        return self.linear(x) + self.mlp(x)


class SequenceSelfAttention(nn.Module):
    """Multi-head self-attention over the time axis (plain matmuls: fastest on CPU, bf16 included)."""

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, h: Tensor) -> Tensor:
        """h [B, L, d] -> [B, L, d]."""
        b, length, d = h.shape
        q, k, v = self.qkv(h).view(b, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if q.dtype == torch.float32:  # fused kernel: fastest in float32 (but slow in bf16 on CPU)
            ctx = F.scaled_dot_product_attention(q, k, v)
        else:
            scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(d // self.heads))
            ctx = torch.softmax(scores.float(), dim=-1).to(v.dtype) @ v
        return self.out(ctx.transpose(1, 2).reshape(b, length, d))


class TemporalEncoder(nn.Module):
    """LSTM over the window, then multi-head self-attention; each with residual + LayerNorm."""

    def __init__(self, hidden: int, layers: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            hidden,
            hidden,
            num_layers=layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.attn = SequenceSelfAttention(hidden, heads)
        self.norm_lstm = nn.LayerNorm(hidden)
        self.norm_attn = nn.LayerNorm(hidden)

    def forward(self, h: Tensor) -> Tensor:
        """h [B, L, d] -> [B, L, d]."""
        seq, _ = self.lstm(h)
        h = self.norm_lstm(h + seq)
        return self.norm_attn(h + self.attn(h))


class FrequencyAdaptiveNorm(nn.Module):
    """FAN: remove each window's top-k Fourier components (per channel) along time.

    The removed (dominant, non-stationary) part goes through a learnable projection that is
    re-added to the residual (FAN re-adds a predicted non-stationary part). The projection starts
    at the identity, so FAN starts as a no-op and learns how to re-weight the dominant part: the
    dominant components of a window include its mean (frequency 0), i.e. the slow level of each
    channel, which on daily features is where persistent signals (a slowly mean-reverting factor,
    a multi-day average) live. Starting the projection at zero threw that level away and made the
    model re-learn it from scratch (lower IC at every horizon, most at h10/h20). The FFT runs in
    float32 with autocast disabled (bf16 FFTs are unsupported on CPU and most GPUs).
    """

    def __init__(self, hidden: int, top_k: int) -> None:
        super().__init__()
        self.top_k = top_k
        self.restore = nn.Linear(hidden, hidden)
        nn.init.eye_(self.restore.weight)
        nn.init.zeros_(self.restore.bias)

    def _dominant_spectrum(self, hf: Tensor) -> Tensor:
        spec = torch.fft.rfft(hf, dim=1)  # [B, L//2+1, d]
        k = min(self.top_k, spec.shape[1])
        if k <= 0:
            return torch.zeros_like(spec)
        idx = spec.abs().topk(k, dim=1).indices
        keep = torch.zeros(spec.shape, dtype=hf.dtype, device=hf.device).scatter_(1, idx, 1.0)
        return spec * keep

    def split(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """h [B, L, d] -> (residual, dominant) in float32; residual + dominant == h."""
        with torch.autocast(device_type=h.device.type, enabled=False):
            hf = h.float()
            dominant = torch.fft.irfft(self._dominant_spectrum(hf), n=hf.shape[1], dim=1)
            return hf - dominant, dominant

    def forward(self, h: Tensor) -> Tensor:
        """h [B, L, d] -> residual + restore(dominant), [B, L, d]."""
        residual, dominant = self.split(h)
        return residual + self.restore(dominant).float()

    def last_step(self, h: Tensor) -> Tensor:
        """forward(h)[:, -1] via a real DFT matmul (cheap for short windows): [B, L, d] -> [B, d]."""
        with torch.autocast(device_type=h.device.type, enabled=False):
            hf = h.float().transpose(1, 2)  # [B, d, L]
            length = hf.shape[-1]
            cos_b, sin_b, recon = _dft_basis(length, hf.device)
            re, im = hf @ cos_b, hf @ sin_b  # rfft: X_f = re - i*im, [B, d, L//2+1]
            contrib = re * recon[0] + im * recon[1]  # each frequency's value at t = L-1
            power = re * re + im * im
            dominant = torch.zeros_like(hf[..., -1])
            for _ in range(min(self.top_k, power.shape[-1])):  # k argmax passes beat topk here
                idx = power.argmax(dim=-1, keepdim=True)
                dominant = dominant + contrib.gather(-1, idx).squeeze(-1)
                power = power.scatter(-1, idx, -1.0)
            residual = hf[..., -1] - dominant
        return residual + self.restore(dominant).float()


_BASIS: dict[tuple[int, str], tuple[Tensor, Tensor, Tensor]] = {}


def _dft_basis(length: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """cos/sin rfft bases [L, L//2+1] and each frequency's irfft weights at t = L-1 [2, L//2+1]."""
    key = (length, str(device))
    if key not in _BASIS:
        t = torch.arange(length, dtype=torch.float64)
        f = torch.arange(length // 2 + 1, dtype=torch.float64)
        ang = 2.0 * math.pi * t[:, None] * f[None, :] / length
        coef = torch.full_like(f, 2.0)
        coef[0] = 1.0
        if length % 2 == 0:
            coef[-1] = 1.0
        last = 2.0 * math.pi * f * (length - 1) / length
        # x_t = (1/L) sum_f c_f (re_f cos(w t) + im_f sin(w t)) with X_f = re_f - i im_f
        recon = torch.stack([coef * torch.cos(last), coef * torch.sin(last)]) / length
        cos_b, sin_b, recon = (
            v.to(device=device, dtype=torch.float32) for v in (ang.cos(), ang.sin(), recon)
        )
        _BASIS[key] = (cos_b, sin_b, recon)
    return _BASIS[key]
