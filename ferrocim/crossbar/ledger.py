"""Energy ledger of a model: event counts of its analog layers times their energies."""

from __future__ import annotations

import pandas as pd
from torch import nn

from ferrocim.crossbar.convert import analog_modules
from ferrocim.crossbar.energy import KINDS, PHASES


def energy_ledger(model: nn.Module) -> pd.DataFrame:
    """One row per analog layer × phase × kind: columns ``layer, phase, kind, count,
    energy_j``. ``phase`` is "train" for events that happened while the layer was in
    training mode (pulses included), "inference" otherwise. Per-tile write counts and
    energies: :meth:`AnalogModule.tile_counters`."""
    rows = []
    for name, mod in analog_modules(model).items():
        per = mod.energy_per_event()
        for phase in PHASES:
            for kind in KINDS:
                count = int(mod.event_counts[phase][kind])
                rows.append(
                    {
                        "layer": name,
                        "phase": phase,
                        "kind": kind,
                        "count": count,
                        "energy_j": count * per[kind],
                    }
                )
    return pd.DataFrame(rows, columns=["layer", "phase", "kind", "count", "energy_j"])
