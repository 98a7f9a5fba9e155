"""The skip allow-list mechanism of tests/conftest.py (what CI relies on to fail unlisted skips)."""

from conftest import allowed_skip_patterns, unlisted


def test_unlisted_skips_are_found(tmp_path):
    allow = tmp_path / "allow.txt"
    allow.write_text("# comment\ntests/test_a.py::*  # reason\n\ntests/test_b.py::test_x  # reason\n")
    patterns = allowed_skip_patterns(allow)
    assert patterns == ["tests/test_a.py::*", "tests/test_b.py::test_x"]
    assert unlisted(["tests/test_a.py::test_1[p]", "tests/test_b.py::test_x",
                     "tests/test_b.py::test_y"], patterns) == ["tests/test_b.py::test_y"]


def test_every_allowed_skip_has_a_reason():
    from conftest import ALLOWED_SKIPS
    for line in ALLOWED_SKIPS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            pattern, _, reason = line.partition("#")
            assert pattern.strip() and reason.strip(), line
