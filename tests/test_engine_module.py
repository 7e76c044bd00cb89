"""EngineModule pieces that need no Trainer: checkpointed turnover state, the weight EMA."""

from __future__ import annotations

import torch

from engine.config import default_config
from engine.lit_module import EngineModule


def test_turnover_state_is_checkpointed_and_old_checkpoints_still_load() -> None:
    cfg = default_config()
    cfg.loss.turnover_weight = 1.0
    mod = EngineModule(cfg, n_features=12, return_channel=None, n_stocks=4)
    mod.loss_fn.pred_ema.fill_(0.5)
    mod.loss_fn.pred_seen[1] = True
    ckpt = {"state_dict": {k: v.clone() for k, v in mod.state_dict().items()}}
    fresh = EngineModule(cfg, n_features=12, return_channel=None, n_stocks=4)
    fresh.on_load_checkpoint(ckpt)
    fresh.load_state_dict(ckpt["state_dict"])
    assert fresh.loss_fn.pred_ema.eq(0.5).all() and fresh.loss_fn.pred_seen.tolist() == [False, True, False, False]
    old = {"state_dict": {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("loss_fn.pred_")}}
    older = EngineModule(cfg, n_features=12, return_channel=None, n_stocks=4)
    older.on_load_checkpoint(old)  # a checkpoint written before the state was saved
    older.load_state_dict(old["state_dict"])
    assert older.loss_fn.pred_ema.eq(0).all() and not older.loss_fn.pred_seen.any()


def test_weight_ema_tracks_the_model_and_validation_uses_it() -> None:
    cfg = default_config()
    cfg.train.ema_decay = 0.9
    mod = EngineModule(cfg, n_features=12, return_channel=None, n_stocks=4)
    assert mod.ema_model is not None
    assert not any(p.requires_grad for p in mod.ema_model.parameters())
    trainable = {id(p) for p in mod.parameters() if p.requires_grad}
    assert all(id(p) not in trainable for p in mod.ema_model.parameters())  # not optimised
    assert any(k.startswith("ema_model.") for k in mod.state_dict())  # checkpointed
    start = [p.detach().clone() for p in mod.ema_model.parameters()]
    with torch.no_grad():
        for p in mod.model.parameters():
            p.add_(1.0)
    steps = iter(range(1000))
    type(mod).global_step = property(lambda self: next(steps))  # type: ignore[assignment,misc]
    try:
        mod._update_ema()  # step 0: decay min(0.9, 1/10) = 0.1 -> moves 90% of the way
        for p0, p in zip(start, mod.ema_model.parameters(), strict=True):
            torch.testing.assert_close(p, p0 + 0.9)
        for _ in range(200):
            mod._update_ema()
    finally:
        del type(mod).global_step
    for p_ema, p in zip(mod.ema_model.parameters(), mod.model.parameters(), strict=True):
        torch.testing.assert_close(p_ema, p, atol=1e-6, rtol=0)  # converges to constant weights
    x, day = torch.randn(6, cfg.data.seq_len, 12), torch.tensor([0, 0, 0, 1, 1, 1])
    batch = {"x": x, "day": day, "y": torch.randn(6, 4), "stock": torch.tensor([0, 1, 2, 0, 1, 3])}
    mod.eval()
    with torch.no_grad():
        mod.ema_model.prediction_head.heads[0].out.bias.add_(5.0)  # make the two models differ
        _, _, out_ema = mod._loss(batch, mod.ema_model)
        _, _, out_raw = mod._loss(batch)
        assert not torch.allclose(out_ema["pred"], out_raw["pred"])
        mod.validation_step(batch, 0)  # validation predicts with the averaged weights
    torch.testing.assert_close(torch.from_numpy(mod._val_pred[0]), out_ema["pred"])


def test_no_ema_by_request() -> None:
    cfg = default_config()
    cfg.train.ema_decay = 0.0
    mod = EngineModule(cfg, n_features=12, return_channel=None, n_stocks=4)
    assert mod.ema_model is None and not any(k.startswith("ema_model.") for k in mod.state_dict())
