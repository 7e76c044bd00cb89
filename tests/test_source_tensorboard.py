"""The TensorBoard event-file source (tui.log.sources.tensorboard) on real event files: written by
torch's SummaryWriter, by tensorboard's own writer (TF2-style tensor scalars), by a real Lightning
run with its TensorBoardLogger, and records framed by hand with tensorboard's CRC; read back
incrementally, torn, truncated, replaced and damaged, and compared with tensorboard's
EventAccumulator."""

from __future__ import annotations

import math
import os
import random
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as tb_crc
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util

from tui.log.events import Scalars
from tui.log.sources import tensorboard as tbsource
from tui.log.sources.tensorboard import SOURCE, TensorBoardReader, masked_crc32c

ROOT = Path(__file__).resolve().parent.parent
PATTERN = "**/events.out.tfevents.*"
WALL = 1_795_000_000.0


def f32(v: float) -> float:
    """`v` as a float32 holds it (what simple_value keeps)."""
    return struct.unpack("<f", struct.pack("<f", v))[0]


def record(event: Event) -> bytes:
    """One TFRecord framed with tensorboard's own CRC."""
    data = event.SerializeToString()
    head = struct.pack("<Q", len(data))
    return head + struct.pack("<I", tb_crc(head)) + data + struct.pack("<I", tb_crc(data))


def scalar(tag: str, value: float, step: int, wall: float = WALL) -> Event:
    """The Event SummaryWriter.add_scalar writes."""
    return Event(wall_time=wall, step=step,
                 summary=Summary(value=[Summary.Value(tag=tag, simple_value=value)]))


def histogram(tag: str, step: int) -> Event:
    """A histogram Event (what add_histogram writes), a few hundred bytes."""
    from torch.utils.tensorboard import summary

    bins = np.linspace(-1, 1, 40).tolist()
    return Event(wall_time=WALL, step=step,
                 summary=summary.histogram(tag, np.random.default_rng(step).normal(size=500), bins))


def reader(folder: Path, **kw: object) -> TensorBoardReader:
    return TensorBoardReader(str(folder / PATTERN), every=0, **kw)  # type: ignore[arg-type]


def flat(events: list) -> list[tuple[int, str, float | None]]:
    """(step, name, value) of every value, in order."""
    out = []
    for e in events:
        assert isinstance(e, Scalars) and e.source == "tensorboard" and e.kind == "auto"
        out += [(e.step, k, v) for k, v in e.values]
    return out


def epochs(events: list) -> dict[int, int]:
    """step -> epoch of the events that carry one (the same for every event of a step)."""
    out: dict[int, int] = {}
    for e in events:
        if e.epoch is not None:
            assert out.setdefault(e.step, e.epoch) == e.epoch
    return out


def events_file(folder: Path, name: str = "events.out.tfevents.1795000000.host.1.0") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def mixed_records(n_steps: int, seed: int = 0) -> tuple[bytes, list[tuple[int, str, float]]]:
    """A Lightning-shaped stream of records (three scalars and `epoch` a step, a histogram now and
    then, val metrics every 10 steps) and the (step, name, value) it holds; epoch = step // 10 + 1."""
    rng = random.Random(seed)
    out = [record(Event(wall_time=WALL, file_version="brain.Event:2"))]
    want = []
    for step in range(n_steps):
        for tag in ("train_loss", "grad_norm", "lr-AdamW"):
            v = rng.uniform(-3, 3)
            out.append(record(scalar(tag, v, step)))
            want.append((step, tag, f32(v)))
        out.append(record(scalar("epoch", step // 10, step)))
        if step % 7 == 3:
            out.append(record(histogram("layer.weight", step)))
        if step % 10 == 9:
            v = rng.uniform(0, 1)
            out.append(record(scalar("val_loss", v, step)))
            want.append((step, "val_loss", f32(v)))
    return b"".join(out), want


def mixed_epochs(n_steps: int) -> dict[int, int]:
    return {s: s // 10 + 1 for s in range(n_steps)}


def test_crc_is_tensorboards() -> None:
    rng = random.Random(1)
    for n in (0, 1, 8, 100):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert masked_crc32c(data) == tb_crc(data)


def test_summary_writer_scalars_and_nothing_else(tmp_path: Path) -> None:
    """torch's SummaryWriter: simple_value scalars (and a new_style tensor one) read back at float32
    precision, with their steps and wall times; histograms, images, text and hparams ignored."""
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    t0 = time.time()
    w = SummaryWriter(str(tmp_path / "run"))
    vals = [0.1, 1 / 3, -2.5e-7, 12345.678]
    for step, v in enumerate(vals):
        w.add_scalar("train/loss", v, step)
        w.add_scalar("lr", v * 10, step)
        w.add_histogram("w", np.random.default_rng(step).normal(size=100), step)
        w.add_text("note", f"step {step}", step)
    w.add_image("img", np.zeros((3, 4, 4)), 3)
    for s in hparams({"lr": 0.1}, {"hp/x": 1.0}):
        w._get_file_writer().add_summary(s, 0)
    w.add_scalar("nan", float("nan"), 4)
    w.add_scalar("inf", float("inf"), 4)
    w.add_scalar("tensor_style", 2.75, 5, new_style=True)
    w.add_scalar("big_step", 1.0, 10**12)
    w.close()
    t1 = time.time()
    events = reader(tmp_path).poll()
    assert [(e.step, e.values) for e in events] == [
        *[(s, (("train/loss", f32(v)), ("lr", f32(v * 10)))) for s, v in enumerate(vals)],
        (4, (("nan", None), ("inf", None))),
        (5, (("tensor_style", 2.75),)),
        (10**12, (("big_step", 1.0),)),
    ]
    assert all(t0 - 1 <= e.t <= t1 + 1 and e.epoch is None for e in events)


def test_lightning_epoch_and_hp_metric(tmp_path: Path) -> None:
    """`epoch` (0-based) becomes the event's 1-based epoch, `hp_metric` is left out, a step with
    nothing else makes no event; consecutive records of one step are one event (a repeated tag keeps
    its last value, first-seen order); a multi-value Summary (TF1's merged summaries) and
    negative or zero steps are read."""
    merged = Event(wall_time=WALL + 5, step=3, summary=Summary(value=[
        Summary.Value(tag="a", simple_value=1.0),
        Summary.Value(tag="h", histo=histogram("h", 0).summary.value[0].histo),
        Summary.Value(tag="b", simple_value=2.0)]))
    data = b"".join(record(e) for e in [
        scalar("hp_metric", -1, 0),
        scalar("train_loss", 0.5, 1, WALL + 1), scalar("epoch", 0, 1), scalar("train_loss", 0.25, 1),
        scalar("lr", 0.125, 1),
        scalar("val_loss", 0.75, 2, WALL + 2), scalar("epoch", 1, 2), scalar("hp_metric", 3, 2),
        scalar("epoch", 2, 2),
        merged,
        scalar("neg", 1.0, -5, WALL + 6), scalar("epoch", -1, -5),
    ])
    events_file(tmp_path).write_bytes(data)
    events = reader(tmp_path).poll()
    assert [(e.step, e.epoch, e.t, e.values) for e in events] == [
        (1, 1, WALL + 1, (("train_loss", 0.25), ("lr", 0.125))),
        (2, 3, WALL + 2, (("val_loss", 0.75),)),
        (3, None, WALL + 5, (("a", 1.0), ("b", 2.0))),
        (-5, None, WALL + 6, (("neg", 1.0),)),
    ]


def _tensor_value(tag: str, tensor: TensorProto, meta: bool = True, plugin: str = "scalars"
                  ) -> Summary.Value:
    value = Summary.Value(tag=tag, tensor=tensor)
    if meta:
        value.metadata.CopyFrom(SummaryMetadata(
            plugin_data=SummaryMetadata.PluginData(plugin_name=plugin)))
    return value


def test_tf2_tensor_scalars_match_event_accumulator(tmp_path: Path) -> None:
    """tf.summary.scalar's records (a float tensor with the scalars plugin's metadata, the metadata
    only on a tag's first value), written by tensorboard's EventFileWriter: float / double / half
    values, float_val or tensor_content; text, histogram and untagged tensors ignored. The values
    equal EventAccumulator's tensors."""
    from tensorboard.plugins.scalar.summary_v2 import scalar_pb
    from tensorboard.plugins.text.summary_v2 import text_pb

    w = EventFileWriter(str(tmp_path / "tf2"))
    want = []
    for step in range(6):
        first = step == 0
        loss = scalar_pb("loss", 1.0 / (step + 1))
        if not first:  # TF strips the metadata after a tag's first value
            loss.value[0].ClearField("metadata")
        acc = Summary(value=[_tensor_value(
            "acc", tensor_util.make_tensor_proto(np.float64(0.1 * step)), meta=first)])
        packed = Summary(value=[_tensor_value("packed", TensorProto(
            dtype=1, tensor_content=struct.pack("<f", step + 0.5)), meta=first)])
        half = Summary(value=[_tensor_value(
            "half", tensor_util.make_tensor_proto(np.float16(step / 4)), meta=first)])
        text = text_pb("notes", f"step {step}")
        hist = Summary(value=[_tensor_value(
            "hist", tensor_util.make_tensor_proto(np.ones((3, 3), np.float64)), plugin="histograms")])
        for s in (loss, acc, packed, half, text, hist):
            w.add_event(Event(wall_time=WALL + step, step=step, summary=s))
        want.append((step, (("loss", f32(1.0 / (step + 1))), ("acc", 0.1 * step),
                            ("packed", step + 0.5), ("half", step / 4))))
    w.add_event(Event(wall_time=WALL, step=9, summary=Summary(value=[_tensor_value(
        "untagged", tensor_util.make_tensor_proto(np.float32(1)), meta=False)])))
    w.close()
    events = reader(tmp_path).poll()
    assert [(e.step, e.values) for e in events] == want
    assert [e.t for e in events] == [WALL + s for s in range(6)]
    (path,) = tmp_path.rglob("events.out.tfevents.*")
    acc = EventAccumulator(str(path), size_guidance={"tensors": 0})
    acc.Reload()
    theirs = sorted((t.step, tag, float(tensor_util.make_ndarray(t.tensor_proto)))
                    for tag in ("loss", "acc", "packed", "half") for t in acc.Tensors(tag))
    assert sorted(flat(events)) == theirs


def test_same_scalars_as_event_accumulator(tmp_path: Path) -> None:
    """A SummaryWriter file with histograms between the scalars: every scalar EventAccumulator
    keeps (size_guidance 0: all), ours the same, value for value."""
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(tmp_path))
    rng = np.random.default_rng(0)
    for step in range(300):
        w.add_scalar("train_loss_step", float(rng.normal()), step)
        w.add_scalar("grad_norm", float(rng.uniform()), step * 3)  # other steps: one event each
        if step % 50 == 0:
            w.add_histogram("enc.weight", rng.normal(size=1000), step)
            w.add_scalar("val/a_rather_long_metric_name_" + "x" * 120, float(rng.normal()), step)
    w.close()
    (path,) = tmp_path.glob("events.out.tfevents.*")
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
    acc.Reload()
    theirs = [(s.step, tag, s.value) for tag in acc.Tags()["scalars"] for s in acc.Scalars(tag)]
    ours = flat(reader(tmp_path).poll())
    assert len(theirs) == 600 + 6 and sorted(ours) == sorted(theirs)


def test_incremental_polls_see_only_new_events(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(tmp_path))
    for step in range(3):
        w.add_scalar("loss", step, step)
    w.flush()
    r = reader(tmp_path)
    assert [e.step for e in r.poll()] == [0, 1, 2]
    assert r.poll() == []
    for step in range(3, 6):
        w.add_scalar("loss", step, step)
    w.flush()
    assert [(e.step, e.values) for e in r.poll()] == [(s, (("loss", float(s)),)) for s in (3, 4, 5)]
    assert r.poll() == []
    w.close()


def test_partial_record_waits_for_the_rest(tmp_path: Path) -> None:
    """A record torn anywhere (in its header, its payload, its CRC) is read once it is whole."""
    first, second = record(scalar("a", 1.0, 1)), record(scalar("b", 2.0, 2))
    path = events_file(tmp_path)
    for cut in range(len(second) + 1):
        path.write_bytes(first + second[:cut])
        r = reader(tmp_path)
        assert flat(r.poll()) == [(1, "a", 1.0)] + ([(2, "b", 2.0)] if cut == len(second) else [])
        with path.open("ab") as fh:
            fh.write(second[cut:])
        assert flat(r.poll()) == ([] if cut == len(second) else [(2, "b", 2.0)])
        assert r.damaged_bytes == 0 and r.bad_records == 0


def test_a_file_appearing_later_is_read(tmp_path: Path) -> None:
    """Lightning's next version_N folder (a resumed run) is picked up; each file's own events."""
    events_file(tmp_path / "version_0").write_bytes(record(scalar("loss", 1.0, 1)))
    r = reader(tmp_path)
    assert flat(r.poll()) == [(1, "loss", 1.0)]
    events_file(tmp_path / "version_1", "events.out.tfevents.1795000100.host.1.0").write_bytes(
        record(scalar("loss", 0.5, 2)))
    assert flat(r.poll()) == [(2, "loss", 0.5)]
    with (tmp_path / "version_0" / "events.out.tfevents.1795000000.host.1.0").open("ab") as fh:
        fh.write(record(scalar("loss", 0.25, 3)))
    assert flat(r.poll()) == [(3, "loss", 0.25)]


def test_the_default_glob_finds_lightning_files(tmp_path: Path) -> None:
    assert SOURCE.name == SOURCE.preset_key == "tensorboard" and SOURCE.reader is TensorBoardReader
    folder = tmp_path / "run" / "lightning_logs" / "version_0"
    events_file(folder).write_bytes(record(scalar("loss", 1.0, 1)))
    (folder / "hparams.yaml").write_text("lr: 0.1\n")
    r = SOURCE.reader(SOURCE.default_glob.format(run_dir=tmp_path / "run", run="run"))
    assert flat(list(r.poll())) == [(1, "loss", 1.0)]


def test_truncated_replaced_or_removed_file(tmp_path: Path) -> None:
    data, want = mixed_records(20)
    path = events_file(tmp_path)
    path.write_bytes(data)
    r = reader(tmp_path)
    assert flat(r.poll()) == want
    path.write_bytes(data[: len(data) // 2])  # shrank: read again from the start
    half = flat(r.poll())
    assert half and want[: len(half)] == half
    path.write_bytes(b"")
    assert r.poll() == []
    path.write_bytes(record(scalar("x", 1.0, 1)))
    assert flat(r.poll()) == [(1, "x", 1.0)]
    new = tmp_path / "new"
    new.write_bytes(data)
    os.replace(new, path)  # replaced by a longer file: another inode, read from its start
    assert flat(r.poll()) == want
    path.unlink()
    assert r.poll() == []


def test_damaged_records_are_skipped(tmp_path: Path) -> None:
    """Garbage between records, a record whose payload is not protobuf, a header with a wrong CRC,
    zeros and garbage at the end: the records around them are read, nothing raises."""
    good = [record(scalar("loss", float(i), i)) for i in range(6)]
    bad_payload = bytearray(record(scalar("loss", 9.0, 9)))
    bad_payload[12:20] = b"\xff" * 8  # header intact, payload not a protobuf Event
    wrong_crc = bytearray(record(scalar("loss", 8.0, 8)))
    wrong_crc[8] ^= 1
    data = (good[0] + b"some garbage bytes, not a record" + good[1] + bytes(bad_payload)
            + good[2] + bytes(wrong_crc) + good[3] + b"\x00" * 100 + good[4]
            + bytes(random.Random(0).randrange(256) for _ in range(5000)) + good[5] + b"tail junk")
    path = events_file(tmp_path)
    path.write_bytes(data)
    r = reader(tmp_path)
    assert [e.step for e in r.poll()] == [0, 1, 2, 3, 4, 5]
    assert r.bad_records == 1 and r.damaged_bytes >= 5000
    with path.open("ab") as fh:  # after the junk: found again
        fh.write(record(scalar("loss", 7.0, 7)))
    assert [e.step for e in r.poll()] == [7]


def test_a_record_too_long_to_read_is_stepped_over(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(tbsource, "MAX_RECORD", 200)
    big = record(histogram("h", 1))
    assert len(big) > 216
    path = events_file(tmp_path)
    path.write_bytes(record(scalar("a", 1.0, 1)) + big[:-10])
    r = reader(tmp_path, chunk=64)
    assert flat(r.poll()) == [(1, "a", 1.0)]  # the long record is not all there: wait
    with path.open("ab") as fh:
        fh.write(big[-10:] + record(scalar("b", 2.0, 2)))
    assert flat(r.poll()) == [(2, "b", 2.0)]


@pytest.mark.parametrize("chunk", [97, 4096, tbsource.CHUNK])
def test_every_scalar_read_once_over_many_polls(tmp_path: Path, chunk: int) -> None:
    """The file grows by random slices, a poll after each (small reads too): every scalar is read
    exactly once, in order, as one read of the whole file reads them."""
    data, want = mixed_records(300, seed=chunk)
    path = events_file(tmp_path)
    path.write_bytes(b"")
    r = reader(tmp_path, chunk=chunk)
    rng = random.Random(chunk)
    got, pos = [], 0
    while pos < len(data):
        step = rng.randrange(1, 3000)
        with path.open("ab") as fh:
            fh.write(data[pos:pos + step])
        pos += step
        got += r.poll()
    assert flat(got) == want and epochs(got) == mixed_epochs(300)
    assert r.damaged_bytes == 0 and r.bad_records == 0
    whole = reader(tmp_path).poll()
    assert flat(whole) == want and epochs(whole) == mixed_epochs(300) and len(whole) == 300


def test_random_damage_never_raises(tmp_path: Path) -> None:
    """Bytes flipped, cut out, inserted, lengths made huge: every poll returns, nothing raises."""
    data, _ = mixed_records(40)
    rng = random.Random(3)
    path = events_file(tmp_path)
    for trial in range(60):
        b = bytearray(data)
        for _ in range(rng.randrange(1, 20)):
            i = rng.randrange(len(b))
            kind = trial % 4
            if kind == 0:
                b[i] ^= 1 << rng.randrange(8)
            elif kind == 1:
                del b[i:i + rng.randrange(1, 50)]
            elif kind == 2:
                b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 30)))
            else:
                b[i:i + 8] = struct.pack("<Q", rng.choice([2**40, 2**63, 10**9, 0]))
        path.write_bytes(bytes(b))
        r = reader(tmp_path, chunk=rng.choice([64, 1000, 1 << 20]))
        for e in r.poll():
            assert isinstance(e, Scalars)
            assert all(v is None or math.isfinite(v) for _, v in e.values)


def test_a_real_lightning_run(tmp_path: Path) -> None:
    """A tiny LightningModule, 2 epochs of 4 steps on CPU, Lightning's TensorBoardLogger: train_loss
    per step, val_loss per epoch at the epoch's last step, epochs 1-based, no hp_metric or epoch
    values."""
    import warnings

    import lightning as L
    import torch
    from lightning.pytorch.loggers import TensorBoardLogger
    from torch.utils.data import DataLoader, TensorDataset

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Linear(4, 1)

        def training_step(self, batch, _):  # type: ignore[no-untyped-def]
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x).squeeze(-1), y)
            self.log("train_loss", loss, on_step=True, on_epoch=False)
            return loss

        def validation_step(self, batch, _):  # type: ignore[no-untyped-def]
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(x).squeeze(-1), y))

        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            return torch.optim.SGD(self.parameters(), lr=0.1)

    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(x, x.sum(1)), batch_size=16)
    trainer = L.Trainer(max_epochs=2, logger=TensorBoardLogger(str(tmp_path), name="lightning_logs"),
                        log_every_n_steps=1, enable_progress_bar=False, enable_checkpointing=False,
                        enable_model_summary=False, accelerator="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(Tiny(), loader, loader)
    events = SOURCE.reader(SOURCE.default_glob.format(run_dir=tmp_path, run="r")).poll()
    assert [(e.step, e.epoch, [k for k, _ in e.values]) for e in events] == [
        (0, 1, ["train_loss"]), (1, 1, ["train_loss"]), (2, 1, ["train_loss"]),
        (3, 1, ["train_loss", "val_loss"]),
        (4, 2, ["train_loss"]), (5, 2, ["train_loss"]), (6, 2, ["train_loss"]),
        (7, 2, ["train_loss", "val_loss"]),
    ]
    (path,) = tmp_path.rglob("events.out.tfevents.*")
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
    acc.Reload()
    theirs = sorted((s.step, tag, s.value) for tag in ("train_loss", "val_loss")
                    for s in acc.Scalars(tag))
    assert sorted(flat(events)) == theirs
    assert [s.value for s in acc.Scalars("hp_metric")] == [-1.0]


def test_the_reader_imports_no_tensorboard() -> None:
    code = ("import sys; import tui.log.sources.tensorboard; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('tensorboard', 'tensorflow', 'google')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
