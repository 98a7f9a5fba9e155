"""Progress bars (spykehw.golden.progress, tqdm underneath): shown on the given stream with the
label and counts; ``enabled=False`` (what --quiet and --json pass) writes nothing but still
counts; a total that grows while the work runs is accepted."""

from __future__ import annotations

import io

from spykehw.golden.progress import Progress, format_duration


def test_a_bar_names_its_work_and_counts():
    out = io.StringIO()
    with Progress("features", total=10, unit="img", stream=out, interval=0) as p:
        p.advance(4)
        p.advance(6)
    text = out.getvalue()
    assert "features" in text and "10/10" in text and "img" in text
    assert p.done == 10


def test_disabled_writes_nothing_but_counts():
    out = io.StringIO()
    with Progress("cosim", total=5, stream=out, enabled=False) as p:
        p.advance(3)
        p.total += 2
        p.advance(4)
    assert out.getvalue() == "" and p.done == 7 and p.total == 7 and p.rate > 0


def test_bytes_are_scaled():
    out = io.StringIO()
    with Progress("train-images", total=3 << 20, unit="B", stream=out, interval=0) as p:
        p.advance(3 << 20)
    assert "3.00M" in out.getvalue()


def test_durations_for_people():
    assert (format_duration(5.04), format_duration(125), format_duration(7322)) == ("5.0s", "2m05s", "2h02m")
