"""Long logs in the original ATFT pipeline's format, built from its real smoke log.

`tests/data/iterable_cpu_smoke.log` (a copy of the shared reference log) is cut into its parts: the
wrapper's and the trainer's start-up lines, an epoch's head (`[main] Epoch e/n`, learning rate),
its training steps (a tqdm fragment glued to the front of the next Hydra line, graph-builder and
gradient-guard lines, warnings), its validation tail (losses, `Sharpe:`, `Val metrics (z) h=...`,
low-variance warnings, SWA lines) and the end (`=== Training Complete ===`, the wrapper's result).
`write_atft_log` repeats the steps and epochs until the file has the size asked for, with running
timestamps and changing numbers, so a reader has to find the same few lines in a long file that a
real run of the pipeline would write. `write_atft_log(..., steps_per_epoch=2)` makes one with tens
of thousands of epochs.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "tests" / "data" / "iterable_cpu_smoke.log"

_HYDRA_TS = re.compile(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\]")
_WRAP_TS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - ")
_FRAG = re.compile(r"^Epoch 1: (\d+)it \[[^\]]*\]")  # a tqdm fragment at the start of a line


@dataclass
class Parts:
    """The smoke log cut into the pieces a long log repeats (lines without their newline)."""

    header: list[str]  # wrapper start-up .. the line before the first epoch's empty message
    epoch_head: list[str]  # empty message, `=====`, `[main] Epoch 1/1`, lr, sched, blank
    steps: list[list[str]]  # one list per training step: the glued fragment line .. the blank line
    tail: list[str]  # the epoch's last fragments, train loss, validation, SWA lines
    end: list[str]  # `=== Training Complete ===` .. the wrapper's result


def cut(source: Path = SOURCE) -> Parts:
    """Find the parts by their marker lines."""
    lines = source.read_text().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    epoch = next(i for i, s in enumerate(lines) if s.endswith("] - [main] Epoch 1/1"))
    head0 = epoch - 2  # the empty-message line before the `=====` line
    first_frag = next(i for i in range(epoch, len(lines)) if _FRAG.match(lines[i]))
    loss = next(i for i in range(first_frag, len(lines)) if "train/total_loss: " in lines[i])
    last_step = max(i for i in range(first_frag, loss) if _FRAG.match(lines[i]) and "][" in lines[i])
    tail0 = next(i for i in range(last_step + 1, loss + 1) if _FRAG.match(lines[i]) or i == loss)
    done = next(i for i, s in enumerate(lines) if s.startswith("=== Training Complete"))
    starts = [i for i in range(first_frag, tail0) if _FRAG.match(lines[i]) and "][" in lines[i]]
    steps = [lines[a:b] for a, b in zip(starts, [*starts[1:], tail0], strict=True)]
    return Parts(lines[:head0], lines[head0:first_frag], steps, lines[tail0 : done - 1], lines[done - 1 :])


class _Clock:
    """A running local time, formatted in both prefixes (the formatting is cached per second)."""

    def __init__(self, t0: float) -> None:
        self.t = t0
        self._sec = -1
        self._text = ""

    def tick(self, dt: float) -> tuple[str, str]:
        """Advance by dt seconds; (hydra `[ts]`, wrapper `ts - `)."""
        self.t += dt
        s = int(self.t)
        if s != self._sec:
            self._sec, self._text = s, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s))
        ts = f"{self._text},{int(self.t * 1000) % 1000:03d}"
        return f"[{ts}]", f"{ts} - "


def _stamp(lines: list[str], clock: _Clock, dt: float) -> list[str]:
    out = []
    for s in lines:
        if "[20" in s:
            hy, _ = clock.tick(dt)
            s = _HYDRA_TS.sub(hy, s, count=1)
        elif s[:2] == "20" and _WRAP_TS.match(s):
            _, wr = clock.tick(dt)
            s = wr + s[26:]
        out.append(s)
    return out


def _epoch_lines(parts: Parts, epoch: int, n_epochs: int, n_steps: int, rnd: random.Random,
                 clock: _Clock) -> list[str]:
    """One epoch: head, n_steps steps (the smoke log's steps in turn), validation tail."""
    out = [s.replace("Epoch 1/1", f"Epoch {epoch}/{n_epochs}").replace("epoch=1 ", f"epoch={epoch} ")
           for s in parts.epoch_head]
    lr = 1e-4 * (0.5 + 0.5 * rnd.random())
    out = [f"{s[: s.index('rate: ') + 6]}{lr:.6f}" if "Learning rate: " in s else s for s in out]
    loss = 0.35 + 0.01 * rnd.random()
    for k in range(n_steps):
        block = parts.steps[k % len(parts.steps)]
        frag = f"Epoch {epoch}: {k + 1}it [00:{k % 60:02d},  {rnd.uniform(1.4, 1.7):.2f}s/it, loss={loss:.4f}]"
        first = _FRAG.sub(frag, block[0], count=1)
        out += [first, *block[1:]]
        if (k + 1) % 10 == 0:
            loss = 0.35 + 0.01 * rnd.random()
            out.append(f"Epoch {epoch}: {k + 1}it [00:{k % 60:02d},  1.56s/it, loss={loss:.4f}]")
    val = 0.34 + 0.02 * rnd.random()
    for s in parts.tail:
        if _FRAG.match(s):
            s = _FRAG.sub(f"Epoch {epoch}: {n_steps}it [01:23,  1.61s/it, loss={loss:.4f}]", s, count=1)
        elif "train/total_loss: " in s:
            s = s[: s.index("loss: ") + 6] + f"{loss:.6f}"
        elif s.endswith("[main] Validation loss: nan"):
            s = s[:-3] + f"{val:.4f}"
        elif s.endswith("val/loss: nan"):
            s = s[:-3] + f"{val:.6f}"
        elif s.endswith("val/epoch: 1"):
            s = s[:-1] + str(epoch)
        elif s.endswith("Sharpe: nan") and "Average" not in s:
            s = s[:-3] + f"{rnd.uniform(-0.2, 0.3):.4f}"
        elif "Val metrics (z) h=" in s:
            s = re.sub(r"IC=[-\d.]+", f"IC={rnd.uniform(-0.05, 0.08):.4f}", s)
            s = s.replace("SCALE(yhat/y)=0.00", f"SCALE(yhat/y)={rnd.uniform(0.0, 0.4):.2f}")
        out.append(s)
    return out


def write_atft_log(path: Path, size_mb: float = 300.0, steps_per_epoch: int = 50, seed: int = 0,
                   source: Path = SOURCE) -> int:
    """Write a log of about size_mb MB in the pipeline's format; returns the number of epochs.

    The last epoch is complete and the run ends like the smoke log does (finished, Achieved
    Sharpe). Epoch starts say `Epoch e/n` with n = the number of epochs written.
    """
    parts = cut(source)
    rnd = random.Random(seed)
    clock = _Clock(time.mktime(time.strptime("2025-10-28 23:54:09", "%Y-%m-%d %H:%M:%S")))
    one = _epoch_lines(parts, 1, 1, steps_per_epoch, random.Random(seed), _Clock(clock.t))
    per_epoch = sum(len(s) + 1 for s in one)
    fixed = sum(len(s) + 1 for s in parts.header + parts.end)
    n_epochs = max(1, round((size_mb * 1e6 - fixed) / per_epoch))
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w") as out:
        out.write("\n".join(_stamp(parts.header, clock, 0.05)) + "\n")
        for e in range(1, n_epochs + 1):
            lines = _epoch_lines(parts, e, n_epochs, steps_per_epoch, rnd, clock)
            out.write("\n".join(_stamp(lines, clock, 0.25)) + "\n")
        out.write("\n".join(_stamp(parts.end, clock, 0.5)) + "\n")
    tmp.replace(path)
    return n_epochs


if __name__ == "__main__":
    import sys

    p = Path(sys.argv[1])
    t = time.perf_counter()
    n = write_atft_log(p, float(sys.argv[2]) if len(sys.argv) > 2 else 300.0,
                       int(sys.argv[3]) if len(sys.argv) > 3 else 50)
    print(f"{p}: {p.stat().st_size / 1e6:.1f} MB, {n} epochs, {time.perf_counter() - t:.1f}s")
