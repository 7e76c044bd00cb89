"""TensorBoard attach benchmark: our event-file reader vs tensorboard's own EventAccumulator.

One ~100 MB event file (generated once into bench/out/) shaped like a long Lightning run with the
TensorBoardLogger logging every step: per step `train_loss_step`, `grad_norm` and Lightning's
`epoch`, then LearningRateMonitor's `lr-AdamW`; per epoch (1,000 steps) five `val_*` metrics and
`train_loss_epoch` (each logging call with its `epoch`); a weight histogram of four layers every
500 steps (torch's SummaryWriter bins, ~8.5 KB each); the file version, the hparams plugin's three
summaries and `hp_metric` first. The records are the protos torch's SummaryWriter writes
(tensorboard's event_pb2), framed with their CRCs (computed with numpy, a column at a time).

Timed, each in a fresh child process (the import excluded), interleaved, best of REPEATS:
- `ours`: `TensorBoardReader(path).poll()` (tui.log.sources.tensorboard), every scalar as events;
- `ea`: `EventAccumulator(path, size_guidance={"scalars": 0})` (keep every scalar), `Reload()`,
  then `Scalars(tag)` for every scalar tag: tensorboard as installed here, without TensorFlow, so
  its records come through the stub reader that checks both CRCs in pure Python;
- `ea_nocrc`: the same with the record reader replaced by a bare length-prefix split (no CRC, no
  copy per byte): what the accumulator costs beyond reading records, a lower bound for it with
  TensorFlow's C++ reader;
- `protobuf`: the bare length-prefix split and protobuf's compiled parser (`Event.FromString`, upb)
  on every record, its simple_value scalars listed (no events built): the reader one could write
  on protobuf instead of by hand.
The peak RSS of each child (VmHWM) includes the interpreter and its imports.
`python bench/bench_tensorboard.py [SIZE_MB]`.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "out"
REPEATS = 3
SIZE_MB = 100.0
STEPS_PER_EPOCH = 1000
HIST_EVERY = 500
VAL_TAGS = ("val_loss", "val_sharpe", "val_rank_ic", "val_ic", "val_hit_rate")
LAYERS = ("encoder.weight", "attention.in_proj_weight", "gat.lin.weight", "head.weight")


def _crc_table() -> Any:
    import numpy as np

    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return np.array(table, dtype=np.uint32)


def _masked_crcs(payloads: list[bytes]) -> list[int]:
    """The masked CRC-32C of each payload, vectorised over the payloads of one length."""
    import numpy as np

    table = _crc_table()
    by_len: dict[int, list[int]] = {}
    for i, p in enumerate(payloads):
        by_len.setdefault(len(p), []).append(i)
    out = [0] * len(payloads)
    for n, idx in by_len.items():
        rows = np.frombuffer(b"".join(payloads[i] for i in idx), dtype=np.uint8).reshape(len(idx), n)
        crc = np.full(len(idx), 0xFFFFFFFF, dtype=np.uint32)
        for j in range(n):
            crc = table[(crc ^ rows[:, j]) & 0xFF] ^ (crc >> np.uint32(8))
        crc ^= np.uint32(0xFFFFFFFF)
        masked = ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(0xA282EAD8)
        for i, c in zip(idx, masked.tolist(), strict=True):
            out[i] = c
    return out


def _frame(payloads: list[bytes]) -> bytes:
    """TFRecords: length, masked CRC of the length, payload, masked CRC of the payload."""
    lengths = [struct.pack("<Q", len(p)) for p in payloads]
    distinct = sorted(set(lengths))
    heads = dict(zip(distinct, _masked_crcs(distinct), strict=True))
    crcs = _masked_crcs(payloads)
    return b"".join(h + struct.pack("<I", heads[h]) + p + struct.pack("<I", c)
                    for h, p, c in zip(lengths, payloads, crcs, strict=True))


def write_events(path: Path, size_mb: float = SIZE_MB, seed: int = 0) -> dict:
    """A long Lightning run's event file of about `size_mb`; what it holds (for the checks)."""
    import numpy as np
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from torch.utils.tensorboard import SummaryWriter, summary

    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        bins = SummaryWriter(tmp).default_bins
    hists = [summary.histogram(name, rng.standard_normal(20_000) * 0.02, bins) for name in LAYERS]
    t = 1_795_000_000.0

    def scalar(tag: str, value: float, step: int) -> bytes:
        s = Summary(value=[Summary.Value(tag=tag, simple_value=value)])
        return Event(wall_time=t, step=step, summary=s).SerializeToString()

    exp, ssi, sei = summary.hparams({"lr": 5e-4, "hidden_size": 64, "batch_size": 2048},
                                    {"hp_metric": -1})
    payloads = [Event(wall_time=t, file_version="brain.Event:2").SerializeToString(),
                scalar("hp_metric", -1.0, 0)]
    payloads += [Event(wall_time=t, step=0, summary=s).SerializeToString() for s in (exp, ssi, sei)]
    counts = {"records": 0, "scalars": 0, "values": 0, "histograms": 0, "steps": 0, "epochs": 0}
    written = 0
    step = 0
    with path.open("wb") as out:
        while written < size_mb * 1e6:
            epoch = step // STEPS_PER_EPOCH
            loss = float(rng.uniform(0.3, 0.4))
            t += 0.05
            payloads += [scalar("train_loss_step", loss, step),
                         scalar("grad_norm", float(rng.uniform(0.5, 2.0)), step),
                         scalar("epoch", float(epoch), step),
                         scalar("lr-AdamW", 5e-4 * 0.999 ** epoch, step)]
            counts["values"] += 3
            if step % HIST_EVERY == HIST_EVERY - 1:
                payloads += [Event(wall_time=t, step=step, summary=h).SerializeToString()
                             for h in hists]
                counts["histograms"] += len(hists)
            if step % STEPS_PER_EPOCH == STEPS_PER_EPOCH - 1:
                t += 20.0
                payloads += [scalar(tag, float(rng.uniform(-0.1, 0.5)), step) for tag in VAL_TAGS]
                payloads += [scalar("epoch", float(epoch), step),
                             scalar("train_loss_epoch", loss, step), scalar("epoch", float(epoch), step)]
                counts["values"] += len(VAL_TAGS) + 1
                counts["epochs"] += 1
            step += 1
            if len(payloads) >= 20_000:
                data = _frame(payloads)
                out.write(data)
                written += len(data)
                counts["records"] += len(payloads)
                payloads = []
        data = _frame(payloads)
        out.write(data)
        counts["records"] += len(payloads)
    counts["steps"] = step
    counts["scalars"] = counts["records"] - counts["histograms"] - 4  # less the version, hparams
    return counts


def _events(size_mb: float = SIZE_MB) -> tuple[Path, dict]:
    """The cached event file of this size (generated on first use) and what it holds."""
    OUT.mkdir(parents=True, exist_ok=True)
    folder = OUT / f"tensorboard_{size_mb:g}MB"
    path = folder / "events.out.tfevents.1795000000.bench.1.0"
    meta = folder / "counts.json"
    if not (path.is_file() and meta.is_file()):
        folder.mkdir(exist_ok=True)
        t = time.perf_counter()
        counts = write_events(path, size_mb)
        meta.write_text(json.dumps(counts))
        print(f"generated {path} ({counts['records']} records) in {time.perf_counter() - t:.0f}s",
              flush=True)
    return path, json.loads(meta.read_text())


_CHILD = """
import json, struct, sys, time
sys.path.insert(0, {root!r})
mode, path = {mode!r}, {path!r}
if mode == "ours":
    from tui.log.sources.tensorboard import TensorBoardReader
    t0 = time.perf_counter()
    reader = TensorBoardReader(path)
    events = reader.poll()
    dt = time.perf_counter() - t0
    got = {{"events": len(events), "values": sum(len(e.values) for e in events),
            "damaged": reader.damaged_bytes, "bad": reader.bad_records}}
elif mode == "protobuf":
    from tensorboard.compat.proto.event_pb2 import Event
    t0 = time.perf_counter()
    with open(path, "rb") as fh:
        data = fh.read()
    pos, found = 0, []
    while pos + 12 <= len(data):
        n = struct.unpack_from("<Q", data, pos)[0]
        event = Event.FromString(data[pos + 12:pos + 12 + n])
        pos += n + 16
        found += [(event.step, v.tag, v.simple_value) for v in event.summary.value
                  if v.HasField("simple_value")]
    dt = time.perf_counter() - t0
    got = {{"scalars": len(found)}}
else:
    from tensorboard.backend.event_processing import event_accumulator, event_file_loader
    if mode == "ea_nocrc":
        def records(file_path):
            with open(file_path, "rb") as fh:
                data = fh.read()
            pos = 0
            while pos + 12 <= len(data):
                n = struct.unpack_from("<Q", data, pos)[0]
                yield data[pos + 12:pos + 12 + n]
                pos += n + 16
        event_file_loader._make_tf_record_iterator = records
    t0 = time.perf_counter()
    acc = event_accumulator.EventAccumulator(path, size_guidance={{"scalars": 0}})
    acc.Reload()
    scalars = {{tag: acc.Scalars(tag) for tag in acc.Tags()["scalars"]}}
    dt = time.perf_counter() - t0
    got = {{"scalars": sum(len(v) for v in scalars.values()),
            "values": sum(len(v) for k, v in scalars.items() if k not in ("epoch", "hp_metric"))}}
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")]
got.update(s=dt, rss_mb=int(hwm[0].split()[1]) / 1024 if hwm else None)
print(json.dumps(got))
"""


def _time(mode: str, path: Path) -> dict:
    code = _CHILD.format(root=str(ROOT), mode=mode, path=str(path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def measure(size_mb: float = SIZE_MB, repeats: int = REPEATS) -> dict:
    """Best of `repeats` for each reader (interleaved), the ratios, the counts checked."""
    path, counts = _events(size_mb)
    runs: dict[str, list[dict]] = {"ours": [], "ea": [], "ea_nocrc": [], "protobuf": []}
    for _ in range(repeats):
        for mode, got in runs.items():
            got.append(_time(mode, path))
    best = {mode: min(got, key=lambda r: r["s"]) for mode, got in runs.items()}
    ours, ea, nocrc, pb = best["ours"], best["ea"], best["ea_nocrc"], best["protobuf"]
    # Every scalar read, once: Lightning's `epoch` is no value and the val / epoch-end scalars
    # share the last training step's event (one event per step).
    assert ours["values"] == counts["values"] == ea["values"] == nocrc["values"], (best, counts)
    assert ours["events"] == counts["steps"] and not ours["damaged"] and not ours["bad"], best
    assert ea["scalars"] == pb["scalars"] == counts["scalars"], (best, counts)
    res = {"file_mb": round(path.stat().st_size / 1e6, 1), **counts,
           "ours_s": round(ours["s"], 3), "ea_s": round(ea["s"], 3),
           "ea_nocrc_s": round(nocrc["s"], 3), "protobuf_s": round(pb["s"], 3),
           "ratio": round(ea["s"] / ours["s"], 1), "ratio_nocrc": round(nocrc["s"] / ours["s"], 1),
           "ratio_protobuf": round(pb["s"] / ours["s"], 1),
           "all_s": {mode: [round(r["s"], 3) for r in got] for mode, got in runs.items()},
           "peak_rss_mb": {mode: round(max(r["rss_mb"] for r in got)) for mode, got in runs.items()}}
    print(f"tensorboard {res['file_mb']} MB ({counts['scalars']} scalars): ours {res['ours_s']}s, "
          f"EventAccumulator {res['ea_s']}s (ratio {res['ratio']}x; aim >= 10x), without its CRC "
          f"{res['ea_nocrc_s']}s (ratio {res['ratio_nocrc']}x), protobuf's parser {res['protobuf_s']}s "
          f"(ratio {res['ratio_protobuf']}x)", flush=True)
    return res


def run() -> dict:
    """`make bench` entry: the 100 MB file."""
    return measure()


if __name__ == "__main__":
    print(json.dumps(measure(float(sys.argv[1]) if len(sys.argv) > 1 else SIZE_MB), indent=2))
