"""The one error translation every ``ferrocim`` command shares (no other CLI imports)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from ferrocim.checks import FerrocimError


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library input errors into click errors (message, exit code 2)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FerrocimError as exc:
            raise click.UsageError(str(exc)) from None

    return wrapper
