"""The ``ferrocim`` command. Only this module knows the command line.

Each subcommand parses its options, calls one library function and prints where the
results went. Bad input raises :class:`ferrocim.checks.InputError`, shown as a one-line
error with exit status 2 (no traceback).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from ferrocim import __version__
from ferrocim.checks import FerrocimError


def _friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library input errors into click errors (message, exit code 2)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FerrocimError as exc:
            raise click.UsageError(str(exc)) from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ferrocim")
def main() -> None:
    """ferrocim: ferroelectric-synapse calibration, crossbar simulation and SNN training."""


# ---------------------------------------------------------------------------------------
# devices
# ---------------------------------------------------------------------------------------
@main.group()
def devices() -> None:
    """Built-in and calibrated device cards."""


@devices.command("list")
def devices_list() -> None:
    """List the built-in device cards with their kernel parameters and symmetry point."""
    from ferrocim.calibration.card import DEFAULT_PRESET, preset, preset_names

    click.echo(f"{'name':6} {'LTP (A, alpha, beta)':34} {'LTD (A, alpha, beta)':34} W*")
    for name in preset_names():
        c = preset(name)
        ltp = ", ".join(f"{v:.4g}" for v in c.ltp.as_tuple())
        ltd = ", ".join(f"{v:.4g}" for v in c.ltd.as_tuple())
        mark = " (default)" if name == DEFAULT_PRESET else ""
        click.echo(f"{name:6} {ltp:34} {ltd:34} {c.symmetry_point:.3f}{mark}")


@devices.command("show")
@click.argument("card")
@_friendly
def devices_show(card: str) -> None:
    """Print a card (preset name or JSON path) as JSON."""
    from ferrocim.calibration.card import resolve_card

    click.echo(json.dumps(resolve_card(card).to_dict(), indent=2))


# ---------------------------------------------------------------------------------------
# calibrate  (ferrocim.calibration)
# ---------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------
# data  (ferrocim.snn.data)
# ---------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------
# train / retune / sstl / evaluate / report / demo  (ferrocim.pipelines, ferrocim.reports)
# ---------------------------------------------------------------------------------------


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
