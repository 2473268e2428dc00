"""Energy-convergence study: pulse width × training rule on a digit-classification MLP.

For every (width, rule, seed) one ordinary run directory under ``OUT/runs/`` trains an
MLP (default 64-256-128-10 on scikit-learn's 8×8 digits; 784-256-128-10 on MNIST IDX
files) whose three Linear layers live on crossbar tiles built from the width's card, with
one of the rules of :mod:`ferrocim.crossbar.rules`. Per epoch it records test accuracy,
pulses and the training energy from the layers' ledger (write pulses at the card's energy
per pulse; read MACs, DAC and ADC conversions of the training forwards). ``OUT/results.parquet``
holds one row per run; ``OUT/report.html`` the plots. A finished run is skipped and an
interrupted one continues from its last epoch, ending with the same numbers.
"""

from __future__ import annotations

import dataclasses
import gzip
import itertools
import json
import math
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ferrocim.atomic import atomic_path, write_json
from ferrocim.checks import InputError, check_option, check_range, read_toml
from ferrocim.crossbar import AnalogConfig, AnalogLinear, energy_ledger
from ferrocim.crossbar.rules import RULES, make_rule, rule_config
from ferrocim.logs import progress as progress_bar
from ferrocim.pipelines.seeding import numpy_generator, torch_generator
from ferrocim.pipelines.width_cards import WidthCard, pick, resolve_width_cards

DEFAULT_WIDTHS: tuple[float, ...] = (2e-8, 2e-7, 2e-6, 2e-5, 2e-4, 2e-3)
READ_KINDS = ("read", "dac", "adc")


@dataclass(frozen=True)
class StudyConfig:
    """What the study trains (units: seconds for widths, accuracy as a fraction).

    ``samples`` caps the training set (None: all); ``target`` is the test accuracy whose
    first crossing defines the energy to target; ``bl`` is the pulse-train length of the
    ``plain``/``symmetry`` rules; ``lr`` the SGD learning rate of every rule.

    ``array`` is the crossbar configuration of every run (the one spine,
    :class:`~ferrocim.crossbar.AnalogConfig`; its ``card`` is replaced by each width's
    card, and each rule sets its reference and, for ``mixed``, its threshold): weight
    window, symmetry reference, pulse order, ``dw_min`` definition and periphery (DAC,
    ADC, read noise, device-to-device spread). Its default is ferrocim's: window
    ``1/sqrt(fan_in)``, the card's W* for the symmetry rule, grouped pulses, ideal
    periphery (no DAC/ADC, the card's read noise, the card's device-to-device spread).
    """

    widths: tuple[float, ...] = DEFAULT_WIDTHS
    rules: tuple[str, ...] = RULES
    seeds: tuple[int, ...] = (0,)
    epochs: int = 10
    samples: int | None = None
    data: str = "digits"
    root: str | None = None
    hidden: tuple[int, ...] = (256, 128)
    lr: float = 0.1
    batch_size: int = 16
    bl: int = 31
    target: float = 0.8
    device: str = "cpu"
    array: AnalogConfig = field(default_factory=AnalogConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.array, AnalogConfig):
            raise InputError(f"'array' must be an AnalogConfig, got {type(self.array).__name__}")
        if not self.widths or not self.rules or not self.seeds:
            raise InputError("--widths, --rules and --seeds each need at least one value")
        for w in self.widths:
            check_range("--widths", w, 0.0, low_inclusive=False)
        for r in self.rules:
            check_option("--rules", r, RULES)
        check_option("--data", self.data, ("digits", "mnist"))
        if self.data == "mnist" and not self.root:
            raise InputError("--data mnist needs --root PATH (the folder of the MNIST IDX files)")
        if self.data == "digits" and self.root:
            raise InputError(
                f"--root {self.root} applies to --data mnist only (the digits ship with "
                "scikit-learn); leave it out, or add --data mnist"
            )
        for name in ("epochs", "batch_size", "bl"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"--{name.replace('_', '-')} must be an integer >= 1, got {v!r}")
        if self.samples is not None and (not isinstance(self.samples, int) or self.samples < 10):
            raise InputError(f"--samples must be an integer >= 10, got {self.samples!r}")
        check_range("--lr", self.lr, 0.0, low_inclusive=False)
        check_range("--target", self.target, 0.0, 1.0)
        check_option("--device", self.device, ("cpu", "cuda"))

    def to_dict(self) -> dict[str, Any]:
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}
        out["array"] = array_settings(self.array)
        return out


def array_settings(array: AnalogConfig) -> dict[str, Any]:
    """The array configuration as plain JSON, without the card (set per width)."""
    return array.model_dump(mode="json", exclude={"card"})


#: keys of a study configuration file besides ``[array]`` (StudyConfig's fields)
STUDY_KEYS = (
    "widths",
    "rules",
    "seeds",
    "epochs",
    "samples",
    "data",
    "root",
    "hidden",
    "lr",
    "batch_size",
    "bl",
    "target",
    "device",
)


def study_config_data(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The fields of a study TOML file (top-level study keys and an ``[array]`` table,
    an :class:`AnalogConfig` without ``card``), checked for unknown keys; the ``array``
    value is validated into an ``AnalogConfig``."""
    import difflib

    p = Path(path)
    data = read_toml(p, "study configuration")
    for key in data:
        if key != "array" and key not in STUDY_KEYS:
            close = difflib.get_close_matches(key, [*STUDY_KEYS, "array"], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InputError(f"{p}: unknown study field {key!r}{hint}")
    out: dict[str, Any] = {}
    for key, v in data.items():
        if key in ("widths", "rules", "seeds", "hidden"):
            if not isinstance(v, list):
                raise InputError(f"{p}: {key!r} must be a list, got {v!r}")
            out[key] = tuple(float(x) if key == "widths" else x for x in v)
        elif key != "array":
            out[key] = v
    arr = data.get("array", {})
    if not isinstance(arr, dict):
        raise InputError(f"{p}: [array] must be a table")
    if "card" in arr:
        raise InputError(f"{p}: array.card is set per width from --cards; remove it")
    try:
        out["array"] = AnalogConfig(**arr)
    except InputError as exc:
        raise InputError(f"{p}: {exc}") from None
    return out


# ---- data ------------------------------------------------------------------------------
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """An IDX file (MNIST's format; ``.gz`` too) as a numpy array.

    Header: two zero bytes, a type code (0x08 uint8 … 0x0E float64), the number of
    dimensions, then each size as a big-endian int32; the data follow, big-endian.
    """
    p = Path(path)
    raw = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise InputError(f"{p}: not an IDX file (the first bytes must be 0, 0, type code)")
    ndim = raw[3]
    head = 4 + 4 * ndim
    if ndim == 0 or len(raw) < head:
        raise InputError(f"{p}: IDX header truncated ({len(raw)} bytes, {ndim} dimensions)")
    shape = tuple(int(v) for v in np.frombuffer(raw, ">i4", ndim, 4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    need = head + math.prod(shape) * dtype.itemsize
    if len(raw) != need:
        raise InputError(
            f"{p}: IDX data of shape {shape} need {need} bytes, the file has {len(raw)}"
        )
    return np.frombuffer(raw, dtype, offset=head).reshape(shape).astype(dtype.newbyteorder("="))


def _find(root: Path, stem: str) -> Path:
    for name in (
        stem,
        stem.replace("-idx", ".idx"),
        f"{stem}.gz",
        f"{stem.replace('-idx', '.idx')}.gz",
    ):
        if (root / name).is_file():
            return root / name
    raise InputError(f"--root {root}: no {stem} (or .gz) inside")


@dataclass(frozen=True)
class Digits:
    """Train and test tensors: ``x`` float32 in [0, 1] (N, features), ``y`` int64."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_data(cfg: StudyConfig) -> Digits:
    """Digits (stratified 80/20 split, fixed) or MNIST (its own train/test files); the
    training set capped at ``cfg.samples`` (a fixed random subset)."""
    if cfg.data == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        x, y = load_digits(return_X_y=True)
        xtr, xte, ytr, yte = train_test_split(
            x / 16.0, y, test_size=0.2, stratify=y, random_state=0
        )
    else:
        root = Path(str(cfg.root))
        xtr = read_idx(_find(root, "train-images-idx3-ubyte")) / 255.0
        ytr = read_idx(_find(root, "train-labels-idx1-ubyte"))
        xte = read_idx(_find(root, "t10k-images-idx3-ubyte")) / 255.0
        yte = read_idx(_find(root, "t10k-labels-idx1-ubyte"))
        xtr, xte = xtr.reshape(len(xtr), -1), xte.reshape(len(xte), -1)
        if len(xtr) != len(ytr) or len(xte) != len(yte):
            raise InputError(f"--root {root}: image and label files differ in length")
    if cfg.samples is not None and cfg.samples < len(xtr):
        keep = numpy_generator(0, "study-samples").permutation(len(xtr))[: cfg.samples]
        xtr, ytr = xtr[np.sort(keep)], ytr[np.sort(keep)]

    def t(a: np.ndarray, dt: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a)).to(dt)

    return Digits(
        t(xtr, torch.float32), t(ytr, torch.int64), t(xte, torch.float32), t(yte, torch.int64)
    )


def build_mlp(
    n_in: int, hidden: tuple[int, ...], n_out: int, config: AnalogConfig, generator: torch.Generator
) -> nn.Sequential:
    """Analog MLP ``n_in - hidden... - n_out`` with ReLU (layers ``fc1, relu1, …``); weights
    U(±1/sqrt(fan_in)) from ``generator`` (the window per ``config.weight_window``), every
    Linear on tiles."""
    sizes = (n_in, *hidden, n_out)
    layers: dict[str, nn.Module] = {}
    for i, (a, b) in enumerate(itertools.pairwise(sizes), start=1):
        layers[f"fc{i}"] = AnalogLinear(a, b, config=config, generator=generator)
        if i < len(sizes) - 1:
            layers[f"relu{i}"] = nn.ReLU()
    return nn.Sequential(OrderedDict(layers))


# ---- one run ---------------------------------------------------------------------------
@dataclass
class RunResult:
    """One row of ``results.parquet``."""

    width_s: float
    rule: str
    seed: int
    card: str
    energy_per_pulse_j: float
    energy_source: str
    final_acc: float
    best_acc: float
    acc_per_epoch: list[float]
    pulses: int
    ltp_pulses: int
    ltd_pulses: int
    write_energy_j: float
    read_energy_j: float
    total_energy_j: float
    target: float
    epochs_to_target: int | None  # epochs trained when the target was first reached
    energy_to_target_j: float | None
    wall_s: float
    programming_s: float
    run_dir: str


class _Store:
    """Everything this study writes into a run directory (one place for the run-dir API).

    The run is finished when ``summary.json`` exists; its study row is rebuilt from
    ``metrics.csv`` (one row per epoch, cumulative counts, energies and times).
    """

    def __init__(self, path: Path) -> None:
        from ferrocim.pipelines.rundir import RunDir

        self.run = RunDir(path)

    def finished_metrics(self) -> list[dict[str, Any]] | None:
        if self.run.read_summary() is None:
            return None
        return self.run.read_metrics().to_dict("records")

    def start(self, config: dict[str, Any], card: WidthCard, device: str) -> None:
        import tomli_w

        from ferrocim.pipelines.rundir import environment

        if not self.run.exists():
            self.run.start(tomli_w.dumps(_toml_clean(config)), environment(device), card.card)

    def checkpoint(self) -> dict[str, Any] | None:
        p = self.run.last_checkpoint
        return torch.load(p, weights_only=True) if p.is_file() else None

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        with atomic_path(self.run.last_checkpoint) as tmp:
            torch.save(state, tmp)

    def epoch(
        self,
        metrics: list[dict[str, Any]],
        counts: dict[str, list[int]],
        epoch: int,
        rule: str,
        before: int,
        step: int,
    ) -> None:
        """Metrics so far; this epoch's pulses and crossings per layer (LTP, LTD, LTP, LTD)
        replace any event rows written after step ``before``."""
        from ferrocim.pipelines.rundir import EventRow

        self.run.write_metrics(metrics)
        self.run.truncate_events(before)
        self.run.append_events(
            EventRow(step, epoch, rule, layer, *c) for layer, c in counts.items()
        )

    def finish(self, model: nn.Module, result: RunResult, steps: int, epochs: int) -> None:
        from ferrocim.pipelines.rundir import RunSummary, programming_totals

        with atomic_path(self.run.energy) as tmp:
            energy_ledger(model).to_csv(tmp, index=False)
        totals = programming_totals(self.run.read_events())
        summary = RunSummary(
            kind="energy-convergence",
            seed=result.seed,
            test_acc=100 * result.final_acc,
            epochs=epochs,
            steps=steps,
            **totals.as_dict(),
            wall_s=result.wall_s,
        )
        self.run.write_summary(summary)


def _toml_clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _toml_clean(v) if isinstance(v, dict) else v for k, v in d.items() if v is not None}


def _ledger_totals(model: nn.Module) -> tuple[int, int, float, float]:
    """Training-phase (ltp pulses, ltd pulses, write J, read+DAC+ADC J)."""
    led = energy_ledger(model)
    tr = led[led["phase"] == "train"]
    by = tr.groupby("kind")[["count", "energy_j"]].sum()
    return (
        int(by.loc["write_ltp", "count"]),
        int(by.loc["write_ltd", "count"]),
        float(by.loc[["write_ltp", "write_ltd"], "energy_j"].sum()),
        float(by.loc[list(READ_KINDS), "energy_j"].sum()),
    )


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    acc = float((model(x).argmax(1) == y).double().mean().item())
    model.train()
    return acc


def run_one(
    cfg: StudyConfig, data: Digits, card: WidthCard, rule: str, seed: int, path: Path
) -> RunResult:
    """Train (or resume, or read back) one (width, rule, seed) run in ``path``."""
    store = _Store(path)
    done = store.finished_metrics()
    if done is not None:
        return _result(cfg, card, rule, seed, done, path)
    device = torch.device(cfg.device)
    acfg = rule_config(rule, cfg.array.replace(card=card.card))
    model = build_mlp(
        data.x_train.shape[1], cfg.hidden, 10, acfg, torch_generator(seed, "init")
    ).to(device)
    opt = make_rule(rule, model, cfg.lr, bl=cfg.bl, generator=torch_generator(seed, "pulse-trains"))
    run_cfg = {
        "kind": "energy-convergence",
        "rule": rule,
        "seed": seed,
        "width_s": card.width_s,
        "card": card.card.name,
        "study": cfg.to_dict(),
        "array": array_settings(acfg),
    }
    store.start(run_cfg, card, cfg.device)
    metrics: list[dict[str, Any]] = []
    start_epoch, step, wall, prog_s = 0, 0, 0.0, 0.0
    ck = store.checkpoint()
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        metrics, start_epoch, step = ck["metrics"], int(ck["epoch"]) + 1, int(ck["step"])
        wall, prog_s = float(ck["wall_s"]), float(ck["programming_s"])
    xtr, ytr = data.x_train.to(device), data.y_train.to(device)
    xte, yte = data.x_test.to(device), data.y_test.to(device)
    n = len(xtr)
    layers = [name for name, m in model.named_children() if isinstance(m, AnalogLinear)]
    for epoch in range(start_epoch, cfg.epochs):
        t0, before = time.perf_counter(), step
        order = torch.randperm(n, generator=torch_generator(seed, "shuffle", epoch)).to(device)
        counts = {ly: [0, 0, 0, 0] for ly in layers}
        loss_sum = 0.0
        for i in range(0, n, cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            loss = nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            tp = time.perf_counter()
            stats = opt.step()
            prog_s += time.perf_counter() - tp
            opt.zero_grad()
            loss_sum += float(loss.item()) * len(idx)
            step += 1
            for ly in layers:
                counts[ly][0] += stats.ltp_pulses.get(ly, 0)
                counts[ly][1] += stats.ltd_pulses.get(ly, 0)
                counts[ly][2] += stats.ltp_crossings.get(ly, 0)
                counts[ly][3] += stats.ltd_crossings.get(ly, 0)
        wall += time.perf_counter() - t0
        acc = _accuracy(model, xte, yte)
        ltp, ltd, e_write, e_read = _ledger_totals(model)
        metrics.append(
            {
                "epoch": epoch,
                "phase": rule,
                "train_loss": loss_sum / n,
                "test_acc": acc,
                "ltp_pulses": ltp,
                "ltd_pulses": ltd,
                "write_energy_j": e_write,
                "read_energy_j": e_read,
                "wall_s": wall,
                "programming_s": prog_s,
            }
        )
        store.epoch(metrics, counts, epoch, rule, before, step)
        store.save_checkpoint(
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "metrics": metrics,
                "epoch": epoch,
                "step": step,
                "wall_s": wall,
                "programming_s": prog_s,
            }
        )
    close = getattr(opt, "close", None)
    if close is not None:
        close()
    result = _result(cfg, card, rule, seed, metrics, path)
    store.finish(model, result, step, cfg.epochs)
    return result


def _result(
    cfg: StudyConfig,
    card: WidthCard,
    rule: str,
    seed: int,
    metrics: list[dict[str, Any]],
    path: Path,
) -> RunResult:
    last = metrics[-1]
    accs = [float(m["test_acc"]) for m in metrics]
    hit = next((m for m in metrics if m["test_acc"] >= cfg.target), None)
    return RunResult(
        width_s=card.width_s,
        rule=rule,
        seed=seed,
        card=card.card.name,
        energy_per_pulse_j=card.energy_j,
        energy_source=card.energy_source,
        final_acc=accs[-1],
        best_acc=max(accs),
        acc_per_epoch=accs,
        pulses=int(last["ltp_pulses"] + last["ltd_pulses"]),
        ltp_pulses=int(last["ltp_pulses"]),
        ltd_pulses=int(last["ltd_pulses"]),
        write_energy_j=float(last["write_energy_j"]),
        read_energy_j=float(last["read_energy_j"]),
        total_energy_j=float(last["write_energy_j"] + last["read_energy_j"]),
        target=cfg.target,
        epochs_to_target=None if hit is None else int(hit["epoch"]) + 1,
        energy_to_target_j=None
        if hit is None
        else float(hit["write_energy_j"] + hit["read_energy_j"]),
        wall_s=float(last["wall_s"]),
        programming_s=float(last["programming_s"]),
        run_dir=str(path),
    )


# ---- the study -------------------------------------------------------------------------
@dataclass
class StudyResult:
    out_dir: Path
    results: pd.DataFrame
    cards: list[WidthCard] = field(default_factory=list)
    report_path: Path | None = None


def run_study(
    cfg: StudyConfig,
    cards_source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    device_id: str | None = None,
    pooled: bool = False,
    energy_table: str | os.PathLike[str] | None = None,
    report: bool = True,
    progress: bool = True,
) -> StudyResult:
    """Every (width, rule, seed) run, ``results.parquet`` and the report under ``out_dir``.

    Rerunning with the same ``out_dir`` resumes: finished runs are read back, interrupted
    ones continue from their last epoch. A different configuration in an existing
    ``out_dir`` is refused.
    """
    out = Path(out_dir)
    stored = out / "study.json"
    if stored.is_file():
        old = json.loads(stored.read_text())
        old.setdefault("array", array_settings(AnalogConfig()))  # studies before [array]
        if old != cfg.to_dict():
            diff = sorted(
                k for k in old.keys() | cfg.to_dict().keys() if old.get(k) != cfg.to_dict().get(k)
            )
            raise InputError(
                f"{out} holds a study with other settings ({', '.join(diff)}); choose another --out"
            )
    cards = resolve_width_cards(
        cards_source, out / "cards", device=device_id, pooled=pooled, energy_table=energy_table
    )
    chosen = [pick(cards, w) for w in cfg.widths]
    data = load_data(cfg)
    write_json(stored, cfg.to_dict())
    rows = []
    jobs = [(c, r, s) for c in chosen for r in cfg.rules for s in cfg.seeds]
    # the bar follows -q / TQDM_DISABLE and draws on a terminal only, as every command's
    for c, r, s in progress_bar(jobs, desc="study", unit="run", disable=not progress):
        path = out / "runs" / f"{c.tag}-{r}-seed{s}"
        rows.append(dataclasses.asdict(run_one(cfg, data, c, r, s, path)))
    df = pd.DataFrame(rows)
    with atomic_path(out / "results.parquet") as tmp:
        df.to_parquet(tmp, engine="pyarrow", index=False)
    result = StudyResult(out, df, chosen)
    if report:
        from ferrocim.reports.energy_study import write_study_report

        result.report_path = write_study_report(out)
    return result
