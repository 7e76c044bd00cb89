"""The process panel: psutil and NVML numbers for the run's pid."""

from __future__ import annotations

from textual.widgets import Static

from tui.app.view import ProcView, size


class ProcessPanel(Static):
    """State, CPU, RSS, threads, children, I/O, GPU of the run's process."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("Process\n  no sample yet", **kwargs)  # type: ignore[arg-type]
        self._text = ""

    def show(self, p: ProcView | None) -> None:
        """Render a sample (None: no pid known)."""
        if p is None:
            text = "[b]Process[/b]\n  no pid known"
        elif p.pid is None:  # a Slurm run: the job, as Slurm tells it
            text = f"[b]Job[/b]\n  {p.status}" + ("" if p.alive else "\n  not running")
        elif not p.alive:
            text = f"[b]Process[/b]  pid {p.pid}\n  not running\n  GPU {p.gpu}"
        else:
            cpu = "—" if p.cpu_percent is None else f"{p.cpu_percent:.0f}%"
            text = (
                f"[b]Process[/b]  pid {p.pid}  {p.status}\n"
                f"  CPU {cpu}  RSS {size(p.rss)}\n"
                f"  threads {p.threads if p.threads is not None else '—'}"
                f"  children {p.children if p.children is not None else '—'}\n"
                f"  I/O r {size(p.read_bytes)}  w {size(p.write_bytes)}\n"
                f"  GPU {p.gpu}"
            )
        if text != self._text:
            self._text = text
            self.update(text)
