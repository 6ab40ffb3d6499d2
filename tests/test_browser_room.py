"""A classroom room in a real browser: one presenter and three viewers on one training.

The presenter opens room ``browser-room`` from its link (the "Open room" button makes the presenter
link), three viewer pages open the viewer link, the presenter presses Play: every viewer's
iteration advances with no button of its own, and a viewer's plots are drawn in every frame (updated in
place, never missing or greyed); after Pause all show the presenter's iteration.
Screenshots of the presenter and a viewer at 1366x768 go to ``tmp_path`` (and to
FUNNELKIT_SCREENSHOT_DIR when set). Skipped like tests/test_browser.py when chromium or
playwright is missing, unless FUNNELKIT_REQUIRE_BROWSER=1.

    pytest tests/test_browser_room.py -m browser -s
"""

import os
import time
from pathlib import Path

import pytest

from .test_browser import RENDER_S, chromium_browser, serve_app
from .test_browser import _FRAMES, _iteration, _settle, _wait_until

pytestmark = pytest.mark.browser
ROOM = "browser-room"
VIEWERS = 3
SCREEN = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A Streamlit server for the app with small pictures; always terminated."""
    yield from serve_app(tmp_path_factory, FUNNELKIT_APP_GRID="40", FUNNELKIT_APP_SAMPLES="200",
                         FUNNELKIT_APP_DEVICE="cpu")


@pytest.fixture(scope="module")
def browser(server):
    yield from chromium_browser()


def _charts_drawn(page):
    return page.locator("[data-testid='stElementContainer'] canvas[data-drawn]").count() >= 3  # pierces shadow roots


def _address(page):
    return page.evaluate("window.location.href")


def _screenshots(tmp_path):
    folder = Path(os.environ.get("FUNNELKIT_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_one_presenter_and_three_viewers_share_one_training(browser, server, tmp_path):
    start = time.monotonic()
    presenter = browser.new_page(viewport=SCREEN)
    presenter.goto(f"{server}/?room={ROOM}&dataset=two-moons&hidden_features=16&num_bins=4")
    _settle(presenter)
    presenter.get_by_text("Are you the presenter? Open the room").click()
    presenter.get_by_role("button", name=f"Open room {ROOM}").click()
    # The page's link becomes the presenter link (read from the page: page.url follows only Playwright's events).
    _wait_until(lambda: "token=" in _address(presenter), 60, "the presenter link in the URL")
    _settle(presenter)
    presenter.get_by_role("button", name="Play").wait_for(timeout=RENDER_S * 1000)
    token = _address(presenter).split("token=")[1].split("&")[0]
    viewer_link = presenter.locator("[data-testid='stSidebar'] [data-testid='stCode']").first.inner_text()
    assert viewer_link.strip().endswith(f"?room={ROOM}") and token not in viewer_link

    viewers = [browser.new_page(viewport=SCREEN) for _ in range(VIEWERS)]
    for viewer in viewers:
        viewer.goto(viewer_link.strip())
    for viewer in viewers:
        _settle(viewer)
        viewer.get_by_text(f"Watching room {ROOM}, the presenter controls it").wait_for(timeout=RENDER_S * 1000)
        _wait_until(lambda v=viewer: _charts_drawn(v), 60, "a viewer's three charts")
        assert viewer.get_by_role("button", name="Play").count() == 0
        assert token not in viewer.content()  # the presenter token never reaches a viewer
    opened = time.monotonic() - start
    before = [_iteration(v) for v in viewers]

    presenter.get_by_role("button", name="Play").click()
    for viewer, first in zip(viewers, before):
        _wait_until(lambda v=viewer, f=first: _iteration(v) >= f + 3, 90,
                    lambda v=viewer, f=first: f"a viewer's iteration to advance from {f} (now {_iteration(v)})")
    seen = [_iteration(v) for v in viewers]
    for viewer, value in zip(viewers, seen):  # still live: it moves on again, by itself
        _wait_until(lambda v=viewer, s=value: _iteration(v) > s, 60, "a viewer's further redraw")
    frames = viewers[0].evaluate(_FRAMES, {"ms": 3000, "prefix": "room_"})  # a viewer's plots, updated in place
    assert frames["frames"] > 0 and not frames["bad"], frames
    for page, name in ((presenter, "presenter"), (viewers[0], "viewer")):
        _wait_until(lambda p=page: _charts_drawn(p), 30, f"the {name}'s three charts drawn")
        page.screenshot(path=str(_screenshots(tmp_path) / f"room-{name}-1366x768.png"))

    presenter.get_by_role("button", name="Pause").click()
    _wait_until(lambda: presenter.get_by_role("button", name="Play").is_enabled(), 60, "Play after Pause")
    _settle(presenter)
    presenter.wait_for_timeout(1500)  # a few run_every periods: every page has drawn the paused run
    final = _iteration(presenter)
    for viewer in viewers:
        _wait_until(lambda v=viewer: _iteration(v) == final, 30,
                    lambda v=viewer: f"a viewer to show the presenter's iteration {final} (shows {_iteration(v)})")
    for page in (presenter, *viewers):
        assert page.locator("[data-testid='stException']").count() == 0
        page.close()
    print(f"\nroom: presenter and {VIEWERS} viewers rendered in {opened:.1f} s; trained to iteration {final}; "
          f"the whole test took {time.monotonic() - start:.1f} s")
