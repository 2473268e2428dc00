import pytest

from ferrocim.atomic import atomic_open, write_json, write_text
from ferrocim.checks import InputError, check_option, check_range
from ferrocim.reports.html import Report


def test_atomic_write_leaves_old_file_on_error(tmp_path):
    p = write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError), atomic_open(p) as fh:
        fh.write("new")
        raise RuntimeError("crash")
    assert p.read_text() == "old"
    assert [f.name for f in tmp_path.iterdir()] == ["a.txt"]


def test_write_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        write_json(tmp_path / "x.json", {"v": float("nan")})
    assert not (tmp_path / "x.json").exists()


def test_check_option_and_range_messages():
    with pytest.raises(InputError, match=r"'device'.*'cdua'.*Did you mean 'cuda'"):
        check_option("device", "cdua", ["cpu", "cuda"])
    assert check_range("eps", 0.05, 0, 1, low_inclusive=False) == 0.05
    with pytest.raises(InputError, match=r"'eps' must be > 0, got 0"):
        check_range("eps", 0, 0, 1, low_inclusive=False)
    with pytest.raises(InputError, match="finite"):
        check_range("x", float("nan"))


def test_report_is_self_contained_and_escaped(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = Report("Test <report>")
    r.add_text("Note", "a < b\n\nsecond")
    r.add_table("T", [{"x": 1.23456, "y": "<b>"}])
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    r.add_figure("Line", fig, section="Plots")
    out = r.save(tmp_path / "r.html", png_dir=tmp_path / "png")
    html = out.read_text()
    assert "Test &lt;report&gt;" in html and "a &lt; b" in html and "&lt;b&gt;" in html
    assert html.count("data:image/png;base64,") == 1
    assert "1.235" in html and 'href="#plots-line"' in html
    assert (tmp_path / "png" / "plots-line.png").read_bytes()[:4] == b"\x89PNG"
