"""One device card per pulse width, each with its write energy per pulse.

Built on :func:`ferrocim.calibration.calibrate`: the files of one chosen device (or of all
devices, pooled) are calibrated per pulse width, and every card gets ``pulse.energy_j``:

- *measured* when an energy table (CSV with columns ``width_s, energy_j``) gives the
  width; B1500 amplitude-sweep files hold only the resistances read after each pulse, not
  the write current, so the energy cannot be taken from them;
- *assumed* otherwise: ``3 pJ`` at 20 ns times the published width factors of HfO2/ZrO2
  devices (×1, ×5.7, ×25, ×690, ×3800 at 20 ns, 200 ns, 2 µs, 20 µs, 200 µs; log-log
  interpolated, extrapolated from the end segment outside that range).

``OUT/widths.json`` indexes the cards: width, card file, energy and its source.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ferrocim.atomic import write_json
from ferrocim.calibration.card import DeviceCard, preset
from ferrocim.calibration.device import CalibrationOptions, width_tag
from ferrocim.checks import InputError
from ferrocim.crossbar.energy import WIDTH_SCALING, width_factor

#: Published write energy of one 20 ns pulse (upper bound, J).
ENERGY_AT_20NS_J = 3e-12
ENERGY_REFERENCE = (
    "published HfO2/ZrO2 superlattice synapse width scaling relative to 20 ns (x1, x5.7, "
    "x25, x690, x3800 at 20 ns, 200 ns, 2 us, 20 us, 200 us) with <= 3 pJ per 20 ns pulse"
)
INDEX = "widths.json"


@dataclass(frozen=True)
class WidthCard:
    """A card at one pulse width with its write energy per pulse (J) and where it came from."""

    width_s: float
    card: DeviceCard
    path: Path | None = None

    @property
    def tag(self) -> str:
        return width_tag(self.width_s)

    @property
    def energy_j(self) -> float:
        e = self.card.pulse.energy_j
        return assumed_energy(self.width_s)[0] if e is None else e

    @property
    def energy_source(self) -> str:
        if self.card.pulse.energy_j is None:
            return assumed_energy(self.width_s)[1]
        return self.card.pulse.energy_source or "card"


def assumed_energy(width_s: float) -> tuple[float, str]:
    """(J, source) from the published width factors."""
    lo, hi = WIDTH_SCALING[0][0], WIDTH_SCALING[-1][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = ENERGY_AT_20NS_J * width_factor(width_s)
    note = "" if lo * 0.999 <= width_s <= hi * 1.001 else ", extrapolated from the end segment"
    return e, f"assumed: {ENERGY_REFERENCE}{note}"


def read_energy_table(path: str | os.PathLike[str]) -> dict[float, float]:
    """Measured energies per width from a CSV with columns ``width_s, energy_j``."""
    p = Path(path)
    try:
        df = pd.read_csv(p)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"--pulse-energy {p}: cannot read it as CSV ({exc})") from None
    missing = {"width_s", "energy_j"} - set(df.columns)
    if missing:
        raise InputError(
            f"--pulse-energy {p}: missing column(s) {sorted(missing)}; expected 'width_s,energy_j'"
        )
    out: dict[float, float] = {}
    for i, row in enumerate(df.itertuples(index=False), start=2):
        try:
            w, e = float(row.width_s), float(row.energy_j)
        except (TypeError, ValueError):
            raise InputError(
                f"--pulse-energy {p}, line {i}: width_s and energy_j must be numbers"
            ) from None
        if not (math.isfinite(w) and w > 0 and math.isfinite(e) and e > 0):
            raise InputError(f"--pulse-energy {p}, line {i}: width_s and energy_j must be > 0")
        out[w] = e
    return out


def with_energy(
    card: DeviceCard,
    width_s: float,
    table: dict[float, float] | None = None,
    table_path: str | None = None,
) -> DeviceCard:
    """``card`` with ``pulse.energy_j`` set: from ``table`` (within 0.1 % of the width) or
    the published factors."""
    hit = [e for w, e in (table or {}).items() if abs(w - width_s) <= 1e-3 * width_s]
    if hit:
        energy, source = hit[0], f"measured: {table_path}"
    else:
        energy, source = assumed_energy(width_s)
    pulse = card.pulse.model_copy(update={"energy_j": energy, "energy_source": source})
    return card.model_copy(update={"pulse": pulse})


def calibrate_by_width(
    paths: list[str | os.PathLike[str]] | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    device: str | None = None,
    pooled: bool = False,
    energy_table: str | os.PathLike[str] | None = None,
    options: CalibrationOptions | None = None,
) -> list[WidthCard]:
    """Calibrate the files under ``paths`` into one card per pulse width.

    ``device`` picks one device id; ``pooled`` fits all devices of a width together;
    with neither, the files must hold a single device. Writes the calibration outputs under
    ``out_dir`` and the index ``out_dir/widths.json``; returns the cards by width.
    """
    from ferrocim.calibration import calibrate

    if device and pooled:
        raise InputError("give either --dut or --pooled, not both")
    base = options or CalibrationOptions(plots=False, progress=False)
    opts = dataclasses.replace(
        base, devices=None if device is None else (device,), pool_devices=pooled
    )
    res = calibrate(paths, out_dir, opts)
    where = ", ".join(str(p) for p in ([paths] if isinstance(paths, str | os.PathLike) else paths))
    if not res.duts:
        fails = "; ".join(m for _, m in res.failures[:3]) or "no usable pulse files of it"
        what = f"device {device!r}" if device else "any device"
        raise InputError(f"no card per width could be built for {what} from {where}: {fails}")
    devices = sorted({d.device_id for d in res.duts})
    if not pooled and len(devices) > 1:
        raise InputError(
            f"{where} hold several devices ({', '.join(devices)}); choose one with --dut "
            "or fit them together with --pooled"
        )
    table = None if energy_table is None else read_energy_table(energy_table)
    cards: list[WidthCard] = []
    for d in sorted(res.duts, key=lambda d: d.pulse_width_s or 0.0):
        if d.pulse_width_s is None:
            raise InputError(f"{d.name}: the files do not state their pulse width")
        card = with_energy(d.card, d.pulse_width_s, table, str(energy_table))
        path = card.save(d.card_path or Path(out_dir) / "cards" / f"{d.name}.json")
        cards.append(WidthCard(d.pulse_width_s, card, path))
    write_index(out_dir, cards)
    return cards


def preset_width_cards(
    out_dir: str | os.PathLike[str], widths: tuple[float, ...], name: str = "dut2"
) -> Path:
    """A width index in ``out_dir`` of preset card ``name`` at every pulse width ``widths``
    (s), each with the published energy per pulse (assumed): a study without measured
    cards (tests, benchmarks). Cards are ``out_dir/cards/NAME-WIDTH.json``."""
    cards = []
    for w in widths:
        c = preset(name)
        pulse = c.pulse.model_copy(update={"width_s": w})
        c = with_energy(c.model_copy(update={"name": f"{name}-{w:g}", "pulse": pulse}), w)
        cards.append(WidthCard(w, c, c.save(Path(out_dir) / "cards" / f"{c.name}.json")))
    write_index(out_dir, cards)
    return Path(out_dir)


def write_index(
    out_dir: str | os.PathLike[str],
    cards: list[WidthCard],
    *,
    calibrated_with: dict[str, str | bool | None] | None = None,
) -> Path:
    """``out_dir/widths.json``: width, card path (relative), energy and source per card,
    and (for a study's own calibration) ``calibrated_with``: what it was asked to
    calibrate, checked when the study reuses the folder."""
    out = Path(out_dir)
    rows = [
        {
            "width_s": c.width_s,
            "card": os.path.relpath(c.path, out) if c.path else None,
            "energy_j": c.energy_j,
            "energy_source": c.energy_source,
        }
        for c in cards
    ]
    index: dict[str, object] = {"cards": rows}
    if calibrated_with is not None:
        index["calibrated_with"] = calibrated_with
    return write_json(out / INDEX, index)


def load_width_cards(folder: str | os.PathLike[str], device: str | None = None) -> list[WidthCard]:
    """Cards of a folder: its ``widths.json`` index, else the ``cards/*.json`` of a
    calibration output (those of ``device`` when given: names ``ID`` or ``ID_<width>``),
    one card per width."""
    root = Path(folder)
    if (root / INDEX).is_file():
        try:
            rows = json.loads((root / INDEX).read_text())["cards"]
            return [
                WidthCard(float(r["width_s"]), DeviceCard.load(root / r["card"]), root / r["card"])
                for r in rows
            ]
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(f"{root / INDEX}: not a width index ({exc})") from None
    out: dict[float, list[WidthCard]] = {}
    for f in sorted((root / "cards").glob("*.json")):
        if device is None or f.stem == device or f.stem.startswith(f"{device}_"):
            c = DeviceCard.load(f)
            out.setdefault(c.pulse.width_s, []).append(
                WidthCard(c.pulse.width_s, with_energy(c, c.pulse.width_s), f)
            )
    if not out:
        who = "" if device is None else f" of device {device!r}"
        raise InputError(f"{root}: neither {INDEX} nor cards/*.json{who} inside")
    for w, v in out.items():
        if len(v) > 1:
            names = ", ".join(c.path.name for c in v if c.path)
            raise InputError(f"{root}: several cards at {width_tag(w)} ({names}); pass --dut ID")
    return [v[0] for _, v in sorted(out.items())]


def resolve_width_cards(
    source: str | os.PathLike[str],
    work_dir: str | os.PathLike[str],
    *,
    device: str | None = None,
    pooled: bool = False,
    energy_table: str | os.PathLike[str] | None = None,
) -> list[WidthCard]:
    """Cards from a card folder (``widths.json`` or a calibration output's ``cards/``), or
    calibrated into ``work_dir`` from a measurements folder (reused when ``work_dir``
    already holds its index)."""
    src = Path(source)
    if not src.exists():
        raise InputError(f"--cards {src}: no such file or folder")
    if (src / INDEX).is_file() or (src / "cards").is_dir():
        given = [f for f, v in (("--pooled", pooled), ("--pulse-energy", energy_table)) if v]
        if given:
            raise InputError(
                f"{' and '.join(given)} apply when --cards names measurements to calibrate; "
                f"--cards {src} holds calibrated cards (with their energy per pulse): leave "
                f"{' and '.join(given)} out, or pass the measurements"
            )
        return load_width_cards(src, device)
    asked = calibration_request(src, device, pooled, energy_table)
    if (Path(work_dir) / INDEX).is_file():
        check_same_calibration(Path(work_dir), asked)
        return load_width_cards(work_dir)
    cards = calibrate_by_width(
        src, work_dir, device=device, pooled=pooled, energy_table=energy_table
    )
    write_index(work_dir, cards, calibrated_with=asked)
    return cards


def calibration_request(
    source: Path, device: str | None, pooled: bool, energy_table: str | os.PathLike[str] | None
) -> dict[str, str | bool | None]:
    """What a study asked to calibrate (``widths.json``'s ``calibrated_with``): the
    measurements folder and ``--dut``, ``--pooled``, ``--pulse-energy`` as given."""
    return {
        "source": str(source.resolve()),
        "dut": device,
        "pooled": pooled,
        "pulse_energy": None if energy_table is None else str(Path(energy_table).resolve()),
    }


def check_same_calibration(work_dir: Path, asked: dict[str, str | bool | None]) -> None:
    """A study reuses the cards it calibrated into ``work_dir`` only when asked for the
    same calibration; other ``--cards``/``--dut``/``--pooled``/``--pulse-energy`` values
    are an error (the old cards would be used silently otherwise). An index written before
    the request was recorded is reused with a warning."""
    try:
        done = json.loads((work_dir / INDEX).read_text()).get("calibrated_with")
    except (OSError, ValueError, AttributeError):
        done = None
    if not isinstance(done, dict):
        warnings.warn(
            f"{work_dir / INDEX}: reusing these cards; the index does not record which "
            "--cards/--dut/--pooled/--pulse-energy made them (remove the folder to "
            "calibrate again)",
            stacklevel=3,
        )
        return
    flags = {
        "source": "--cards",
        "dut": "--dut",
        "pooled": "--pooled",
        "pulse_energy": "--pulse-energy",
    }
    differ = [
        f"{flags[k]} {asked[k]!r} (the cards there: {done.get(k)!r})"
        for k in flags
        if done.get(k) != asked[k]
    ]
    if differ:
        raise InputError(
            f"{work_dir} holds cards calibrated with other settings: {'; '.join(differ)}. "
            "Give another --out, or remove that folder to calibrate again"
        )


def pick(cards: list[WidthCard], width_s: float) -> WidthCard:
    """The card at ``width_s`` (within 0.1 %); the error lists the widths there are."""
    for c in cards:
        if abs(c.width_s - width_s) <= 1e-3 * width_s:
            return c
    have = ", ".join(f"{c.width_s:g}" for c in cards)
    raise InputError(f"--widths: no card at {width_s:g} s; the cards cover {have} s")
