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

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(lang: str) -> list[str]:
    """Fenced code blocks of ``lang`` ('' for unlabelled ones)."""
    return re.findall(rf"^```{lang}\n(.*?)^```", README, flags=re.S | re.M)


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
