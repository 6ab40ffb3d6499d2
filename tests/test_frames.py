"""funnelkit.app.frames: the opening frame of a shipped model kept on disk and read back without torch,
made again whenever anything it depends on changes; and a new page drawn from it before torch loads."""

import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from funnelkit.app import frames, live
from funnelkit.app.live_settings import LiveSettings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FUNNELKIT_CACHE", str(tmp_path / "cache"))
    frames._read.cache_clear()
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def opening():
    return live.opening_view(LiveSettings(), "cpu", resolution=12, n_samples=50)


def test_a_kept_frame_reads_back_as_it_was_made(cache, opening):
    path = frames.write_opening(opening, LiveSettings(), "cpu", 12, 50)
    assert path.is_file() and path.is_relative_to(cache)
    back = frames.read_opening(LiveSettings(), "cpu", 12, 50)
    for name in ("iteration", "losses", "steps", "source", "parameters", "reference", "key", "lr"):
        assert getattr(back, name) == getattr(opening, name), name
    for name in ("axis", "log_density", "samples", "data"):
        np.testing.assert_array_equal(getattr(back.pictures, name), getattr(opening.pictures, name))
    assert back.pictures.step == opening.pictures.step and back.device == "cpu"


@pytest.mark.parametrize("change", ["seed", "model", "lr", "device", "resolution", "checkpoint"])
def test_a_frame_is_not_used_for_anything_else(cache, opening, change):
    settings, device, resolution = LiveSettings(), "cpu", 12
    frames.write_opening(opening, settings, device, resolution, 50)
    if change == "checkpoint":  # the shipped model was replaced: its file's time moves
        path = settings.pretrained_path()
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
        try:
            assert frames.read_opening(settings, device, resolution, 50) is None
        finally:
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        return
    if change in ("seed", "model", "lr"):
        settings = replace(settings, **{"seed": {"seed": 1}, "model": {"model": "nsf"}, "lr": {"lr": 0.01}}[change])
    device = "auto" if change == "device" else device
    resolution = 13 if change == "resolution" else resolution
    assert frames.read_opening(settings, device, resolution, 50) is None


def test_no_frame_without_a_shipped_model_and_a_damaged_file_is_made_again(cache, opening):
    assert frames.frame_path(LiveSettings(dataset="two-moons"), "cpu", 12, 50) is None
    path = frames.write_opening(opening, LiveSettings(), "cpu", 12, 50)
    path.write_bytes(b"not a frame")
    assert frames.read_opening(LiveSettings(), "cpu", 12, 50) is None


def test_the_page_modules_import_no_torch():
    code = ("import sys, funnelkit, funnelkit.app.frames, funnelkit.app.live_settings, funnelkit.viz.interactive, "
            "funnelkit.paths; sys.exit(sorted({'torch', 'matplotlib', 'nflows'} & set(sys.modules)) or None)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_a_new_page_draws_the_kept_frame_with_torch_unimportable(tmp_path):
    """A server just started draws its first page from the kept frame without torch: here torch cannot be
    imported at all, and the page shows the opening model's plots, numbers and the sidebar's device line,
    with no error (torch is loaded afterwards, in the background)."""
    cache = tmp_path / "cache"
    env = dict(os.environ, FUNNELKIT_CACHE=str(cache), FUNNELKIT_APP_DEVICE="cpu")
    make = "from streamlit.testing.v1 import AppTest; AppTest.from_file('app.py', default_timeout=120).run()"
    subprocess.run([sys.executable, "-c", make], cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    assert list((cache / "dashboard").glob("opening-*.npz")), "the first page kept no opening frame"
    check = textwrap.dedent("""
        import sys
        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")
        sys.meta_path.insert(0, NoTorch())
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file("app.py", default_timeout=120).run()
        print(len([e for e in at.get("bidi_component") if e.proto.component_name == "funnelkit_live_plot"]), at.metric[0].value, [str(e.value)[:80] for e in at.exception])
    """)
    result = subprocess.run([sys.executable, "-c", check], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    plots, iteration, errors = result.stdout.strip().splitlines()[-1].split(" ", 2)
    assert plots == "3" and iteration == "2,000"
    assert errors == "[]"


def test_the_dashboard_offers_every_toy_in_the_kits_order():
    from funnelkit.app.live_settings import DATASETS
    from funnelkit.data import TOYS

    assert DATASETS == tuple(TOYS)


def test_the_recent_loss_is_the_mean_of_the_last_20_steps_of_a_list_or_an_array():
    losses = [float(i) for i in range(30)]
    assert frames.recent_loss(losses) == pytest.approx(sum(range(10, 30)) / 20)
    assert frames.recent_loss(np.asarray(losses)) == frames.recent_loss(losses)
    assert frames.recent_loss([2.5]) == 2.5 and frames.recent_loss([]) is None
