"""The memory check runs from sizes alone: a data set too large to hold is refused in one line
before any of it is built."""

import pytest

import compare
import data
import sweep
import train_vae
from harness import memory


@pytest.fixture
def nothing_built(monkeypatch):
    """Fails the test if a one-hot set is built (its identity matrix allocated)."""
    def refuse(side):
        raise AssertionError(f"the {side * side}px set was built before the memory check")
    monkeypatch.setattr(data, "one_hot_pixels", refuse)


@pytest.mark.parametrize("main, flags", [
    (train_vae.main, ["--dataset", "1000000px"]),
    (train_vae.main, ["--dataset", "250000px", "--out", "unused"]),
    (compare.main, ["--dataset", "1000000px"]),
    (sweep.main, ["--models", "vae", "--datasets", "1000000px"])])
def test_a_data_set_too_large_for_memory_is_one_line_before_it_is_built(
        nothing_built, main, flags, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(flags)
    assert stop.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "not enough memory for" in lines[0], lines
    assert list(tmp_path.iterdir()) == []          # nothing written


def test_the_size_check_counts_the_images_and_passes_what_fits(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 10 ** 9)
    assert memory.check_data("9px", data.DataOptions(), 0).n_points == 9
    needed = memory.DATA_COPIES * 19600 ** 2 * memory.BYTES_PER_FLOAT     # 3.1 GB > 1 GB
    assert needed > 10 ** 9
    with pytest.raises(ValueError, match="19,600 images of 19,600 pixels"):
        memory.check_data("19600px", data.DataOptions(), 0)
    assert data.n_pixels("digits") == 64 and data.n_pixels("mnist") == 784
