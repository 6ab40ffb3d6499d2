"""The dashboard's classroom rooms (?room=NAME), headless with Streamlit's AppTest.

AppTest runs app.py in this process, so the rooms it shows are funnelkit.app.room.ROOMS, opened here
with a small model; every test closes the rooms it used.
"""

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from funnelkit.app import live, live_settings
from funnelkit.app.room import ROOMS

from .test_app import live_plots

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 120
SMALL = live_settings.LiveSettings(dataset="two-moons", hidden_features=8, num_bins=4)


@pytest.fixture(autouse=True)
def _light_app(monkeypatch):
    monkeypatch.setenv("FUNNELKIT_APP_GRID", "30")
    monkeypatch.setenv("FUNNELKIT_APP_SAMPLES", "100")
    monkeypatch.setenv("FUNNELKIT_APP_DEVICE", "cpu")
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def room():
    opened = ROOMS.open("test-room", SMALL, resolution=30, n_samples=100, n_data=100)
    yield opened
    ROOMS.drop("test-room")


def start(**params):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def texts(elements):
    return " ".join(str(e.value) for e in elements)


def control_keys(at):
    return {b.key for b in at.button if b.key and b.key.startswith("room_")}


def iteration(at):
    (found,) = [m for m in at.metric if m.label == "iteration"]
    return int(found.value.replace(",", ""))


def test_a_viewer_sees_the_run_without_controls(room):
    room.step(room.token, 2)
    at = start(room="test-room")
    assert not at.exception and not at.error
    assert "Watching room **test-room**, the presenter controls it" in texts(at.caption)
    assert control_keys(at) == set() and not at.tabs  # no buttons, no tabs of a page of one's own
    assert iteration(at) == 2
    assert len(live_plots(at)) == 3
    assert "page(s) watching" in texts(at.caption)


def test_the_presenter_gets_controls_and_the_two_links(room):
    at = start(room="test-room", token=room.token)
    assert not at.exception and not at.error
    assert {"room_play", "room_pause", "room_step", "room_reset"} <= control_keys(at)
    codes = [c.value for c in at.sidebar.code]
    assert any(c.endswith("?room=test-room") for c in codes)
    assert any(c.endswith(f"?room=test-room&token={room.token}") for c in codes)
    assert at.button(key="room_pause").disabled and not at.button(key="room_play").disabled
    at.button(key="room_step").click().run()
    assert room.snapshot().iteration == 1 and iteration(at) == 1
    at.button(key="room_play").click().run()
    assert room.playing and at.button(key="room_play").disabled
    at.button(key="room_pause").click().run()
    assert not room.playing and not at.button(key="room_play").disabled


def test_the_presenter_changes_the_rooms_settings(room):
    at = start(room="test-room", token=room.token)
    at.sidebar.selectbox(key="room_dataset").set_value("eight-gaussians")
    at.sidebar.number_input(key="room_lr").set_value(0.01)
    at.sidebar.button[0].click().run()  # the form's submit button
    assert not at.exception and not at.error
    settings = room.snapshot().settings
    assert settings.dataset == "eight-gaussians" and settings.lr == 0.01


def test_a_wrong_token_says_so_and_shows_the_run_without_controls(room):
    at = start(room="test-room", token="not-the-token")
    assert not at.exception
    assert "is not the presenter token of room test-room" in texts(at.error)
    assert control_keys(at) == set() and len(live_plots(at)) == 3
    assert not room.playing


def test_a_room_not_yet_open_waits_and_can_be_opened_by_its_presenter():
    try:
        at = start(room="fresh-room", dataset="two-moons", hidden_features="8", num_bins="4")
        assert not at.exception and not at.error
        assert "is not open yet" in texts(at.info)
        at.button(key="open_room").click().run()
        assert not at.exception and not at.error
        opened = ROOMS.get("fresh-room")
        assert opened is not None and opened.snapshot().settings.dataset == "two-moons"
        assert at.query_params["token"] == [opened.token] or at.query_params["token"] == opened.token
        assert {"room_play", "room_step"} <= control_keys(at)
    finally:
        ROOMS.drop("fresh-room")


def test_an_unknown_room_with_a_token_says_it_is_not_open():
    at = start(room="gone-room", token="whatever")
    assert not at.exception
    assert "is not open on this server" in texts(at.warning)
    assert at.button(key="open_room") is not None and ROOMS.get("gone-room") is None


@pytest.mark.parametrize("name", ["two words", "x" * 40, "-dash"])
def test_a_bad_room_name_is_a_message(name):
    at = start(room=name)
    assert not at.exception
    assert "lowercase letters a-z, digits and hyphens" in texts(at.error)


def test_a_page_without_room_is_the_independent_page():
    at = start(dataset="two-moons", hidden_features="8", num_bins="4")
    assert not at.exception
    assert [t.label for t in at.tabs][0] == "Train" and at.button(key="play") is not None
    assert control_keys(at) == set()


def test_a_page_whose_redraws_come_late_says_the_server_is_busy_without_rerunning(room, monkeypatch):
    """The gap between two redraws is measured, never acted on: no whole-page rerun, the timer stays ROOM_EVERY."""
    import streamlit as st

    at = start(room="test-room")
    first = at.session_state["room_redrawn_at"]
    assert at.session_state["room_gap"] == pytest.approx(0.4)  # ROOM_EVERY: no gap measured yet
    assert "The server is busy" not in texts(at.caption)
    at.session_state["room_redrawn_at"] = first - 3.0  # as if the last redraw started 3 s before this one
    reruns = []
    monkeypatch.setattr(st, "rerun", lambda *a, **k: reruns.append(k))
    at.run()
    assert not at.exception and reruns == []
    gap = at.session_state["room_gap"]
    assert 0.5 * 0.4 + 0.5 * 3.0 <= gap < 0.5 * 0.4 + 0.5 * 3.0 + 0.5 * TIMEOUT  # half the last gap, half before
    assert f"The server is busy: this page redraws about every {gap:.1f} s." in texts(at.caption)
    assert len(live_plots(at)) == 3
    at.session_state["room_redrawn_at"] = at.session_state["room_redrawn_at"] - 60.0  # a hidden tab: not counted
    at.session_state["room_gap"] = 0.4
    at.run()
    assert at.session_state["room_gap"] == pytest.approx(0.4) and "The server is busy" not in texts(at.caption)
