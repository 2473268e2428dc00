"""Finding device cards by name: the presets, then the calibrated cards on disk.

``ferrocim devices list`` shows the built-in presets and the cards ``ferrocim calibrate``
wrote (JSON files in a ``cards/`` folder, looked for under ``./out`` and ``./reports``
unless folders are given). Every name it shows is usable wherever a card is asked for
(``--card NAME``, ``devices show NAME``): :func:`card_spec` turns a name into the path
of its card file. Several files of one name holding the same card (the same calibration
written into several output folders) are one card; files of one name holding different
cards make the name ambiguous, and the error lists their paths to choose from.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferrocim.checks import FerrocimError, InputError

#: Where calibrated cards are looked for (relative to the current folder).
CARD_GLOBS = ("out/**/cards/*.json", "reports/**/cards/*.json")

#: The bundled measurements (``measurements/`` in a source tree is a link to them).
BUNDLED_MEASUREMENTS = Path(__file__).resolve().parent / "data" / "measurements"


@dataclass
class FoundCard:
    """One calibrated card and every file that holds it."""

    name: str
    card: Any  # DeviceCard
    paths: list[Path] = field(default_factory=list)


def _identity(card: Any) -> str:
    """What makes two cards the same device model: everything the simulation reads
    (not the description, the fit report or the provenance, which name files and times)."""
    import json

    data = card.to_dict()
    for key in ("description", "fit", "provenance"):
        data.pop(key, None)
    return json.dumps(data, sort_keys=True)


def card_files(folders: Sequence[str | os.PathLike[str]] = ()) -> list[Path]:
    """The JSON files in ``cards/`` folders under ``folders`` (default: :data:`CARD_GLOBS`)."""
    if folders:
        return sorted(
            {p for f in folders for p in Path(f).rglob("*.json") if p.parent.name == "cards"}
        )
    return sorted({p for g in CARD_GLOBS for p in Path().glob(g)})


def calibrated_cards(folders: Sequence[str | os.PathLike[str]] = ()) -> list[FoundCard]:
    """The calibrated cards under ``folders``, one entry per distinct card (files that
    hold the same card are one entry with several paths); unreadable files are skipped."""
    from ferrocim.calibration.card import DeviceCard

    found: dict[tuple[str, str], FoundCard] = {}
    for path in card_files(folders):
        try:
            card = DeviceCard.load(path)
        except (FerrocimError, ValueError, OSError, KeyError):
            continue
        key = (card.name, _identity(card))
        found.setdefault(key, FoundCard(card.name, card)).paths.append(path)
    return list(found.values())


def ambiguous_names(cards: Iterable[FoundCard]) -> set[str]:
    """Names shared by different cards (a path must then say which)."""
    seen: dict[str, int] = {}
    for c in cards:
        seen[c.name] = seen.get(c.name, 0) + 1
    return {n for n, k in seen.items() if k > 1}


def bundled_devices() -> list[str]:
    """Device ids of the bundled measurements (``ID170ZR5000``, …)."""
    if not BUNDLED_MEASUREMENTS.is_dir():
        return []
    ids = {p.name.lstrip("_") for p in BUNDLED_MEASUREMENTS.glob("*/_*") if p.is_dir()}
    ids |= {p.stem for p in BUNDLED_MEASUREMENTS.glob("*/*.csv") if p.stem.startswith("ID")}
    return sorted(ids)


def card_spec(spec: str, flag: str = "--card") -> str:
    """``spec`` as what :func:`ferrocim.calibration.card.resolve_card` reads: a preset
    name or an existing path as they are, a calibrated card's name as the path of its
    file (under ./out or ./reports). An unknown or ambiguous name is an error that says
    what names exist (and, for a device of the bundled measurements, how to calibrate it).
    """
    from ferrocim.calibration.card import preset_names

    if spec in preset_names() or os.path.exists(spec) or spec.endswith(".json"):
        return spec
    cards = calibrated_cards()
    named = [c for c in cards if c.name == spec or any(p.stem == spec for p in c.paths)]
    if len(named) == 1:
        return str(named[0].paths[0])
    if named:
        paths = ", ".join(str(p) for c in named for p in c.paths[:1])
        raise InputError(
            f"{flag}: {len(named)} different calibrated cards are named {spec!r} "
            f"({paths}); give the path of the one to use"
        )
    presets = ", ".join(preset_names())
    names = sorted({c.name for c in cards})
    calibrated = (
        f"; calibrated cards under ./out and ./reports: {', '.join(names)}"
        if names
        else "; no calibrated cards under ./out or ./reports"
    )
    hint = ""
    if spec.lstrip("_") in bundled_devices():
        where = "measurements/" if Path("measurements").is_dir() else str(BUNDLED_MEASUREMENTS)
        hint = (
            f". {spec} is a device of the bundled measurements: calibrate it first, e.g. "
            f"`ferrocim calibrate {where} --out out/cal`, then use the name {spec.lstrip('_')}"
        )
    close = difflib.get_close_matches(spec, [*preset_names(), *names], n=1)
    did = f" Did you mean {close[0]!r}?" if close else ""
    raise InputError(
        f"{flag}: no card named {spec!r}.{did} Presets are {presets}{calibrated}; or give "
        f"the path of a card JSON (`ferrocim devices list` shows them){hint}"
    )
