"""Classroom rooms (funnelkit.app.room): one run trained in a process of its own, read by many viewers."""

import dataclasses
import os
import signal
import threading
import time

import numpy as np
import pytest
import torch

from funnelkit.app import live, live_settings
from funnelkit.app.room import (ACTIVITY, NAME_RULE, NotPresenter, RoomError, Rooms, Snapshot, check_room_name,
                            shared_line)

SMALL = live_settings.LiveSettings(dataset="two-moons", hidden_features=8, num_bins=4)  # no shipped model: a fresh, small run
PICTURES = {"resolution": 20, "n_samples": 50, "n_data": 50}
WAIT_S = 60  # a busy CI machine trains slowly


@pytest.fixture
def rooms():
    registry = Rooms()
    yield registry
    registry.close_all()


def open_small(rooms, name="stats101"):
    return rooms.open(name, SMALL, **PICTURES)


def wait_for(condition, what, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout} s")
        time.sleep(0.02)


@pytest.mark.parametrize("name, expected", [("stats101", "stats101"), (" Stats-101 ", "stats-101"), ("a", "a"),
                                            ("x" * 32, "x" * 32)])
def test_room_names_are_normalised(name, expected):
    assert check_room_name(name) == expected


@pytest.mark.parametrize("name", ["", "  ", "two words", "-start", "end-", "x" * 33, "café", "a/b", "a_b"])
def test_bad_room_names_say_what_is_allowed(name):
    with pytest.raises(RoomError, match="lowercase letters a-z, digits and hyphens") as info:
        check_room_name(name)
    assert repr(name) in str(info.value)


def test_a_room_name_must_be_text():
    with pytest.raises(RoomError, match="must be text"):
        check_room_name(42)
    assert "32 characters" in NAME_RULE


def test_a_new_room_is_paused_with_a_first_snapshot_and_a_token(rooms):
    room = open_small(rooms)
    snap = room.snapshot()
    assert isinstance(snap, Snapshot) and snap.room == "stats101" and snap.version == 1
    assert snap.iteration == 0 and not snap.playing and snap.losses.size == 0 and snap.last_loss is None
    assert snap.pictures.log_density.shape == (20, 20) and snap.pictures.samples.shape == (50, 2)
    assert snap.settings == SMALL and snap.parameters > 0
    assert isinstance(room.token, str) and len(room.token) >= 20
    assert rooms.get("STATS101") is room  # names are case-insensitive
    assert rooms.open("other", SMALL, **PICTURES).token != room.token
    time.sleep(0.3)
    assert room.snapshot().iteration == 0  # nothing trains before Play


def test_play_trains_in_the_background_and_pause_stops_it(rooms):
    room = open_small(rooms)
    room.play(room.token)
    assert room.playing
    wait_for(lambda: room.snapshot().iteration >= 5, "training in the background")
    paused = room.pause(room.token)
    assert not paused.playing and not room.playing
    time.sleep(0.5)
    assert room.snapshot().iteration == paused.iteration  # no step after Pause returned
    assert room.snapshot().losses.size == paused.iteration


def test_step_trains_exactly_the_steps_asked_for(rooms):
    room = open_small(rooms)
    assert room.step(room.token).iteration == 1
    assert room.step(room.token, 3).iteration == 4
    assert not room.playing
    with pytest.raises(ValueError, match="positive int"):
        room.step(room.token, 0)


def test_a_viewer_in_another_thread_sees_the_iteration_advance(rooms):
    room = open_small(rooms)
    seen = []
    stop = threading.Event()

    def viewer():
        while not stop.is_set():
            snap = rooms.get("stats101").snapshot()
            seen.append((snap.version, snap.iteration))
            time.sleep(0.01)

    thread = threading.Thread(target=viewer)
    thread.start()
    try:
        room.play(room.token)
        # three published iterations (a chunk of training may hold many steps on a fast CPU)
        wait_for(lambda: len({i for _, i in list(seen)}) >= 3, "a viewer seeing three iterations")
    finally:
        stop.set()
        thread.join()
    versions = [v for v, _ in seen]
    iterations = [i for _, i in seen]
    assert versions == sorted(versions) and iterations == sorted(iterations)  # never back in time
    assert len(set(iterations)) >= 3 and iterations[-1] > 0  # it saw the run move, not only its start


def test_a_wrong_or_missing_token_cannot_control_the_room(rooms):
    room = open_small(rooms)
    other = rooms.open("other", SMALL, **PICTURES)
    before = room.snapshot()
    for token in (None, "", "guess", other.token, room.token[:-1]):
        for control in (room.play, room.step, room.reset, room.pause, room.load_pretrained):
            with pytest.raises(NotPresenter, match="only the presenter controls room 'stats101'"):
                control(token)
        with pytest.raises(NotPresenter):
            room.apply(token, SMALL)
    time.sleep(0.3)
    after = room.snapshot()
    assert not room.playing and after.iteration == before.iteration == 0 and after.version == before.version
    assert room.is_presenter(room.token) and not room.is_presenter(other.token)


def test_snapshots_are_consistent_and_read_only_while_training(rooms):
    room = open_small(rooms)
    room.play(room.token)
    snaps = []
    wait_for(lambda: snaps.append(room.snapshot()) or snaps[-1].iteration >= 20, "20 iterations")
    room.pause(room.token)
    trained = [s for s in snaps if s.iteration > 0]
    assert trained
    for snap in trained:
        assert snap.steps.shape == snap.losses.shape == (snap.iteration,)
        assert snap.steps[-1] == snap.iteration and np.all(np.diff(snap.steps) == 1)
        assert snap.pictures.step <= snap.iteration
        assert np.isfinite(snap.losses).all()
    last = trained[-1]
    for array in (last.steps, last.losses, last.pictures.log_density, last.pictures.samples, last.pictures.data):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        last.iteration = 0
    # An old snapshot stays as it was while the run trains on.
    kept = last.losses.copy()
    room.step(room.token, 2)
    assert np.array_equal(last.losses, kept) and room.snapshot().iteration >= last.iteration + 2


def test_reset_and_new_settings_reach_the_viewers(rooms):
    room = open_small(rooms)
    room.step(room.token, 3)
    assert room.reset(room.token).iteration == 0
    faster = dataclasses.replace(SMALL, lr=0.01)
    snap = room.apply(room.token, faster)
    assert snap.settings.lr == 0.01 and snap.lr == 0.01
    moons = room.apply(room.token, dataclasses.replace(SMALL, dataset="eight-gaussians"))
    assert moons.settings.dataset == "eight-gaussians" and moons.iteration == 0
    with pytest.raises(ValueError, match="LiveSettings"):
        room.apply(room.token, {"lr": 0.1})


def test_load_pretrained_without_a_shipped_model_is_a_clear_error(rooms):
    room = open_small(rooms)
    with pytest.raises(ValueError, match="no shipped checkpoint"):
        room.load_pretrained(room.token)


def test_a_room_opens_once_and_unknown_rooms_are_none(rooms):
    open_small(rooms)
    with pytest.raises(RoomError, match="already open"):
        open_small(rooms)
    assert rooms.get("nobody-here") is None
    assert rooms.names() == ["stats101"]
    with pytest.raises(RoomError, match="not allowed"):
        rooms.get("bad name")


def test_the_number_of_rooms_is_bounded():
    rooms = Rooms(max_rooms=2)
    try:
        open_small(rooms, "a")
        open_small(rooms, "b")
        with pytest.raises(RoomError, match="already holds 2 rooms"):
            open_small(rooms, "c")
    finally:
        rooms.close_all()
    with pytest.raises(ValueError, match="max_rooms"):
        Rooms(max_rooms=0)
    with pytest.raises(ValueError, match="idle_s"):
        Rooms(idle_s=0)


def test_an_idle_room_is_dropped_and_its_thread_stops():
    now = [1000.0]
    rooms = Rooms(idle_s=60, clock=lambda: now[0])
    try:
        room = open_small(rooms)
        room.play(room.token)
        now[0] += 30
        assert rooms.get("stats101") is room  # looked at: no longer idle
        now[0] += 61
        assert rooms.names() == [] and rooms.get("stats101") is None
        assert room.closed and not room.training_alive
        with pytest.raises(RoomError, match="was closed"):
            room.play(room.token)
        assert open_small(rooms) is not room  # the name is free again, with a new token
    finally:
        rooms.close_all()


def test_activity_counts_the_playing_rooms(rooms):
    room = open_small(rooms)
    before = ACTIVITY.count()
    room.play(room.token)
    wait_for(lambda: ACTIVITY.count() == before + 1, "the room counted as training")
    room.pause(room.token)
    wait_for(lambda: ACTIVITY.count() == before, "the paused room no longer counted", timeout=5)


def test_the_shared_line_appears_from_two_trainings():
    assert shared_line(0) is None and shared_line(1) is None
    assert "3 trainings" in shared_line(3) and "shared" in shared_line(3)


def test_pictures_are_shared_between_snapshots_until_redrawn_and_viewers_are_counted(rooms):
    room = open_small(rooms)
    first = room.snapshot(viewer="a")
    room.snapshot(viewer="b")
    assert room.watching() == 2 and first.drawn_version == first.version
    room.play(room.token)
    snaps = []
    wait_for(lambda: snaps.append(room.snapshot()) or snaps[-1].iteration >= 20, "20 iterations")
    room.pause(room.token)
    for snap in snaps:
        assert snap.drawn_version <= snap.version and snap.room_id == first.room_id
    by_drawing = {}
    for snap in snaps:
        by_drawing.setdefault(snap.drawn_version, set()).add(id(snap.pictures))
    assert all(len(ids) == 1 for ids in by_drawing.values())  # one drawing, one pictures object
    assert room.watching(within=0.0) == 0  # forgotten once older than ``within``


def test_the_room_trains_in_a_process_of_its_own_and_its_loss_history_is_exact(rooms):
    """The frames carry only what is new in the loss history; put together, it is the history of the same run
    trained here, step for step (a seeded CPU run is repeatable)."""
    room = open_small(rooms)
    assert room._process._process.pid != os.getpid() and room.training_alive
    room.step(room.token, 3)
    room.step(room.token, 4)  # a frame continuing the history
    here = live.LiveRun.create(SMALL, pretrained=True)
    here.step(3)
    here.step(4)
    snap = room.snapshot()
    assert np.array_equal(snap.losses, np.asarray(here.trainer.history["loss"], dtype=np.float64))
    assert np.array_equal(snap.steps, np.arange(1, 8))
    assert room.reset(room.token).losses.size == 0  # a new model: the history starts again
    assert room.step(room.token, 2).steps.tolist() == [1, 2]


def test_a_room_whose_training_process_dies_pauses_and_says_so(rooms):
    room = open_small(rooms)
    room.play(room.token)
    wait_for(lambda: room.snapshot().iteration > 0, "training in the background")
    os.kill(room._process._process.pid, signal.SIGKILL)
    wait_for(lambda: "ended unexpectedly" in (room.snapshot().message or ""), "the room saying its process ended")
    assert not room.playing and not room.training_alive
    with pytest.raises(RoomError, match="stopped .*ended unexpectedly.*open it again"):
        room.play(room.token)
    rooms.drop("stats101")  # closing a room whose process is gone does not hang
    assert rooms.names() == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_run_that_cannot_be_built_fails_where_the_room_is_opened(rooms):
    with pytest.raises(ValueError, match="cuda"):
        rooms.open("stats101", SMALL, device="cuda", **PICTURES)
    assert rooms.names() == [] and rooms.get("stats101") is None
