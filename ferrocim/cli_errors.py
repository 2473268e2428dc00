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


#: Exit status after Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130


def command_line(ctx: click.Context) -> str:
    """The command line of ``ctx`` as given (its arguments and the options typed on the
    command line, in the command's order), quoted for a POSIX shell."""
    import shlex

    from click.core import ParameterSource

    words = ctx.command_path.split()
    for param in ctx.command.params:
        given = param.name and ctx.get_parameter_source(param.name) == ParameterSource.COMMANDLINE
        if not given:
            continue
        value = ctx.params.get(param.name)
        if isinstance(param, click.Argument):
            words += [str(v) for v in value] if isinstance(value, tuple | list) else [str(value)]
            continue
        if not isinstance(param, click.Option):
            continue
        flag = next((o for o in param.opts if o.startswith("--")), max(param.opts, key=len))
        if param.is_flag:
            if value:
                words.append(flag)
            elif param.secondary_opts:
                words.append(max(param.secondary_opts, key=len))
            continue
        for v in value if param.multiple else [value]:
            words += [flag, str(v)]
    return shlex.join(words)


def rerun_to_continue(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command that continues where it stopped when run again (a sweep, a
    study): after Ctrl-C it prints that command instead of click's bare ``Aborted!`` and
    exits with status 130. ``what``: what is kept (e.g. "finished points")."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except KeyboardInterrupt:
                ctx = click.get_current_context()
                click.echo(
                    f"\ninterrupted (Ctrl-C). The {what} are kept; the same command continues "
                    f"where it stopped:\n  {command_line(ctx)}",
                    err=True,
                )
                raise click.exceptions.Exit(INTERRUPTED) from None

        return wrapper

    return decorate
