"""``python -m ferrocim``: the same as the ``ferrocim`` command."""

from ferrocim.cli import main

if __name__ == "__main__":  # pragma: no cover
    main(prog_name="ferrocim")
