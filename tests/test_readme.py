"""The README's code blocks run as written.

The Python example is executed as it stands; the CSV calibration command reads the CSV
shipped in ``measurements/`` with the mapping written in the README (the full command,
fits and report included, runs in the slow test).
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(lang: str) -> list[str]:
    """Fenced code blocks of ``lang`` ('' for unlabelled ones), fences paired in order."""
    found, current, open_lang = [], [], None
    for line in README.splitlines(keepends=True):
        if line.startswith("```"):
            if open_lang is None:
                open_lang, current = line[3:].strip(), []
            else:
                if open_lang == lang:
                    found.append("".join(current))
                open_lang = None
        elif open_lang is not None:
            current.append(line)
    assert open_lang is None, "README: a code fence is not closed"
    return found


def commands(prefix: str) -> list[list[str]]:
    """Shell commands of the unlabelled blocks that start with ``prefix`` (joined lines)."""
    out = []
    for block in blocks(""):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith(prefix):
                out.append(shlex.split(line))
    return out


def test_python_example_runs_as_written():
    (code,) = blocks("python")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    # the example's own comment states what it prints
    expected = re.search(r"print\(.*\)  # (.*)$", code, flags=re.M).group(1)
    assert printed.getvalue().strip() == expected


def _csv_command(out: Path) -> list[str]:
    (cmd,) = [c for c in commands("ferrocim calibrate") if "--format" in c and "csv" in c]
    args = cmd[1:]
    args[args.index("--out") + 1] = str(out)
    return args


def test_csv_example_file_is_shipped_and_reads_with_the_readme_mapping(tmp_path):
    from ferrocim.calibration.readers import ColumnMapping, read_measurement

    args = _csv_command(tmp_path)
    path = ROOT / args[1]
    assert path.is_file() and path.is_relative_to(ROOT / "measurements")
    mapping = ColumnMapping.from_string(
        args[args.index("--columns") + 1],
        pulse_width_s=float(args[args.index("--pulse-width") + 1]),
    )
    seq = read_measurement(path, format="csv", mapping=mapping)
    # two repetitions of 103 positive and 72 negative pulses (measurements/README.md)
    assert len(seq) == 350
    assert sorted(set(seq.sweep.tolist())) == [0, 1]
    assert (seq.amplitude_v > 0).sum() == 206


@pytest.mark.slow
def test_csv_example_command_calibrates(tmp_path, monkeypatch):
    from ferrocim.cli import main

    monkeypatch.chdir(ROOT)
    res = CliRunner().invoke(main, _csv_command(tmp_path / "cal"))
    assert res.exit_code == 0, res.output
    assert (tmp_path / "cal" / "cards" / "ID170ZR5000.json").is_file()
    assert "recommended card: ID170ZR5000" in res.output


def test_readme_points_only_at_files_in_the_repository():
    assert "../shared" not in README and "DESIGN.md" not in README
    for rel in re.findall(r"`((?:measurements|configs|benchmarks|ferrocim)/[\w./-]+)`", README):
        assert (ROOT / rel).exists(), rel


def _resolve(args: list[str]) -> tuple[click.Command, list[str]]:
    """The click command a README line names, and the arguments after its name."""
    from ferrocim.cli import main

    cmd: click.Command = main
    rest = list(args)
    while isinstance(cmd, click.Group) and rest and not rest[0].startswith("-"):
        sub = cmd.get_command(click.Context(cmd), rest[0])
        assert sub is not None, f"README: 'ferrocim … {rest[0]}' is not a command ({args})"
        cmd, rest = sub, rest[1:]
    return cmd, rest


def test_every_readme_command_uses_only_flags_the_command_has():
    lines = commands("ferrocim ")
    assert len(lines) >= 15  # every stage's worked path is there
    for line in lines:
        cmd, rest = _resolve(line[1:])
        known = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
        for tok in rest:
            if tok.startswith("-") and tok != "-":
                flag = tok.split("=", 1)[0]
                said = " ".join(line)
                assert flag in known, f"README: {said}: {flag} is not an option of {cmd.name}"


def _output_after(marker: str) -> list[str]:
    """Lines of the first unlabelled block that contains ``marker``."""
    (block,) = [b for b in blocks("") if marker in b]
    return block.strip().splitlines()


def test_sweep_dry_run_lists_the_points_the_readme_states(tmp_path, monkeypatch):
    from ferrocim.cli import main

    (line,) = [c for c in commands("ferrocim sweep") if "--dry-run" in c]
    assert "the 25 points" in README
    monkeypatch.chdir(ROOT)
    args = line[1:]
    args[args.index("--out") + 1] = str(tmp_path / "sw")
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert re.search(r"^\s+24 [0-9a-f]{16} new ", res.output, flags=re.M)
    assert not re.search(r"^\s+25 [0-9a-f]{16} ", res.output, flags=re.M)
    assert not (tmp_path / "sw").exists()  # a dry run writes nothing


@pytest.mark.slow
def test_calibrate_command_prints_what_the_readme_shows(tmp_path, monkeypatch):
    from ferrocim.cli import main

    (line,) = [c for c in commands("ferrocim calibrate measurements ")]
    args = line[1:]
    out = args[args.index("--out") + 1]
    args[args.index("--out") + 1] = str(tmp_path / "cal")
    monkeypatch.chdir(ROOT)
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    printed = res.output.replace(str(tmp_path / "cal"), out).splitlines()
    for expected in _output_after("recommended card: "):
        assert expected in printed, expected


@pytest.mark.slow
def test_energy_study_commands_print_what_the_readme_shows(tmp_path, monkeypatch):
    from ferrocim.cli import main

    (cards,) = [c for c in commands("ferrocim study cards")]
    (study,) = [c for c in commands("ferrocim study energy-convergence")]
    cards, study = cards[1:], study[1:]
    cards[cards.index("--out") + 1] = str(tmp_path / "cards")
    study[study.index("--cards") + 1] = str(tmp_path / "cards")
    study[study.index("--out") + 1] = str(tmp_path / "energy")
    monkeypatch.chdir(ROOT)
    for args in (cards, study):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, res.output
    printed = " ".join(res.output.split())  # a progress bar may share the header's line
    for expected in _output_after("energy_to_target_j"):
        assert " ".join(expected.split()) in printed, expected
