"""ATFT-GAT-FAN: VSN -> projection -> LSTM + attention -> FAN -> GAT over stocks -> heads."""

from __future__ import annotations

from torch import Tensor, nn

from engine.config import ModelConfig
from engine.layers.day_groups import day_layout, pad, unpad
from engine.layers.graph import GraphAttentionLayer, knn_neighbours
from engine.layers.heads import MultiHorizonPredictionHeads
from engine.layers.temporal import (
    FrequencyAdaptiveNorm,
    InputProjection,
    TemporalEncoder,
    VariableSelection,
)


class ATFTGATFAN(nn.Module):
    """Multi-horizon cross-sectional return model; forward(x [B, L, F], day [B]) -> {"pred": [B, H]}."""

    def __init__(self, n_features: int, cfg: ModelConfig, return_channel: int | None) -> None:
        super().__init__()
        if return_channel is not None and not 0 <= return_channel < n_features:
            raise ValueError(f"return_channel={return_channel} outside 0..{n_features - 1}")
        self.cfg = cfg
        self.n_features = n_features
        self.return_channel = return_channel
        d = cfg.hidden_size
        self.vsn = VariableSelection(n_features, d) if cfg.use_vsn else None
        self.input_proj = InputProjection(n_features, d)
        self.encoder = TemporalEncoder(d, cfg.lstm_layers, cfg.attention_heads, cfg.dropout)
        self.fan = FrequencyAdaptiveNorm(d, cfg.fan_top_k) if cfg.use_fan else None
        self.drop = nn.Dropout(cfg.dropout)  # encoder dropout, on the pooled representation
        self.gat = (
            nn.ModuleList(
                GraphAttentionLayer(d, cfg.gat_heads, cfg.dropout) for _ in range(cfg.gat_layers)
            )
            if cfg.use_gat
            else None
        )
        self.prediction_head = MultiHorizonPredictionHeads(
            d,
            cfg.horizons,
            cfg.head_dropout,
            cfg.layer_scale,
            cfg.layer_norm,
            cfg.output_init_std,
            cfg.quantiles,
        )

    def encode(self, x: Tensor) -> Tensor:
        """Per-row part: x [B, L, F] -> last-step representation [B, d]."""
        if self.vsn is not None:
            x, _ = self.vsn(x)
        h = self.encoder(self.input_proj(x))
        z = self.fan.last_step(h) if self.fan is not None else h[:, -1]
        return self.drop(z)

    def propagate(self, z: Tensor, x: Tensor, day: Tensor) -> Tensor:
        """Cross-sectional part: GAT among rows of the same day; z [B, d] -> [B, d]."""
        if self.gat is None or z.shape[0] == 0:
            return z
        layout = day_layout(day)
        zp = pad(z, layout)
        if self.return_channel is not None:
            series = pad(x[:, :, self.return_channel], layout)
        else:  # no return feature: similarity of the (detached) representations
            series = zp.detach()
        index, valid = knn_neighbours(series, layout.mask, self.cfg.knn_k)
        for layer in self.gat:
            zp = layer(zp, index, valid)
        return unpad(zp, layout)

    def forward(self, x: Tensor, day: Tensor) -> dict[str, Tensor]:
        """x [B, L, F] float, day [B] int64 -> {"pred": [B, H], "quantiles": [B, H, Q] if on}."""
        z = self.propagate(self.encode(x), x, day)
        return self.prediction_head(z)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by part (vsn, input_proj, encoder, fan, gat, prediction_head); empty omitted."""
        parts: dict[str, nn.Module | None] = {
            "vsn": self.vsn,
            "input_proj": self.input_proj,
            "encoder": self.encoder,
            "fan": self.fan,
            "gat": self.gat,
            "prediction_head": self.prediction_head,
        }
        groups = {name: list(m.parameters()) for name, m in parts.items() if m is not None}
        return {name: params for name, params in groups.items() if params}

    def head_init_summary(self) -> str:
        """The text logged after `[PRED-HEAD-INIT] `."""
        c = self.cfg
        quantiles = f"{sorted(c.quantiles)}" if c.quantiles else "off"
        return (
            f"horizons={list(c.horizons)} dropout={c.head_dropout} layer_scale={c.layer_scale} "
            f"layer_norm={c.layer_norm} output_init_std={c.output_init_std} quantiles={quantiles}"
        )


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
