"""The backends, declared in one place: where a run may run (docs/design.md, *Backends*).

`BACKENDS` is the one registry: each entry's name (a preset's `backend = "..."`, `runctl launch
--backend`), the settings of its preset table (`[slurm]`: a dataclass whose fields are the
table's keys, checked by tui.presets.parse from the fields' types and metadata), the manifest keys
it wrote before manifests had `backend_data` (read into it), and its implementation: a module of
`tui.runs.backends` whose `BACKEND` is a `tui.runs.backend.Backend`.

It lives here, in the presets layer, because three layers read it: the CLI (the `--backend`
choices), the preset checks (the name and the table) and tui.runs (the implementation). The
presets layer may not import tui.runs, and tui.runs' store asks backends that themselves use the
store, so the implementation is named here by its module and imported on first use
(`tui.runs.backend.backend_named`), never by this module. Adding a backend is one module in
tui/runs/backends/ plus one entry here (with its settings dataclass, when it takes a table).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_BACKEND = "local"  # a preset or manifest that names none
SIGNAL_BEFORE_S = 90  # Slurm: SIGUSR1 this long before the time limit (its resolution is ~60 s)
_SLURM_TIME = re.compile(r"^(?:\d+-)?\d+(?::\d{1,2}){0,2}$|^(?:UNLIMITED|INFINITE)$", re.IGNORECASE)


def setting(default: Any = None, low: int | None = None,
            check: Callable[[Any], str | None] | None = None) -> Any:
    """A settings field: its default, the least value of an integer, and a check of each value
    (a message when it is wrong, else None); tui.presets.parse applies them."""
    return field(default=default, metadata={"low": low, "check": check})


def _slurm_time(v: str) -> str | None:
    if _SLURM_TIME.match(v.strip()):
        return None
    return f"{v!r}: use minutes (\"30\"), \"MM:SS\", \"HH:MM:SS\" or \"D-HH:MM:SS\""


def _sbatch_option(v: str) -> str | None:
    if v.startswith("-"):
        return None
    return f"{v!r}: each entry is one sbatch option, e.g. \"--exclusive\""


@dataclass(frozen=True)
class SlurmSpec:
    """A preset's `[slurm]` table (docs/presets.md): sbatch settings, each key listed once, here.

    Field order is the order `runctl presets check` names the allowed keys in."""

    partition: str | None = None
    time: str | None = setting(check=_slurm_time)  # sbatch --time: minutes, MM:SS, HH:MM:SS, D-HH:MM:SS
    mem: str | None = None  # sbatch --mem, e.g. "16G"
    account: str | None = None
    qos: str | None = None
    nodes: int = setting(1, low=1)
    ntasks_per_node: int = setting(1, low=1)
    gpus_per_node: int = setting(0, low=0)  # -> --gres=gpu:N
    cpus_per_task: int | None = setting(None, low=1)
    signal_before: int = setting(SIGNAL_BEFORE_S, low=1)
    extra: tuple[str, ...] = setting((), check=_sbatch_option)  # further sbatch arguments, as given

    @property
    def distributed(self) -> bool:
        """More than one task: Lightning DDP across the job's tasks."""
        return self.nodes * self.ntasks_per_node > 1

    def to_json(self) -> dict[str, Any]:
        """Manifest form."""
        out = asdict(self)
        out["extra"] = list(self.extra)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> SlurmSpec:
        """Parse the manifest form (or a preset's checked table)."""
        d = dict(data or {})
        d["extra"] = tuple(d.get("extra") or ())
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class BackendEntry:
    """One backend as the registry declares it."""

    name: str
    module: str  # its implementation: a module whose `BACKEND` is a tui.runs.backend.Backend
    summary: str  # one line, for `--backend` help and docs
    settings: type | None = None  # the dataclass of its preset table `[name]` (None: it takes none)
    legacy: tuple[tuple[str, str], ...] = ()  # (a manifest's key before backend_data, its key there)


BACKENDS: dict[str, BackendEntry] = {
    e.name: e for e in (
        BackendEntry("local", "tui.runs.backends.local",
                     "a detached process on this machine (its GPU slots, its pid)"),
        BackendEntry("slurm", "tui.runs.backends.slurm",
                     "a Slurm batch job (sbatch; requeued near its time limit)", SlurmSpec,
                     legacy=(("job_id", "job_id"), ("job_ids", "job_ids"), ("slurm", "settings"))),
        BackendEntry("ssh", "tui.runs.backends.ssh",
                     "another host's runctl, over ssh (launched with --host HOST of hosts.toml)"),
    )
}


def backend_names() -> tuple[str, ...]:
    """Every backend's name, in the registry's order."""
    return tuple(BACKENDS)


def settings_tables() -> dict[str, type]:
    """The preset tables backends take: table name (the backend's) -> its settings dataclass."""
    return {e.name: e.settings for e in BACKENDS.values() if e.settings is not None}
