"""Classroom rooms: one live training that any number of pages watch, controlled by one presenter.

A lecturer opens a room; every student's page shows the same run, live. Nothing here imports
streamlit: the dashboard (``app.py``, ``?room=NAME``) only reads snapshots and forwards the
presenter's buttons.

    room = ROOMS.open("stats101")                # a LiveRun (funnelkit.app.live) in a process of its own
    room.token                                   # the presenter's secret (secrets.token_urlsafe)
    room.play(room.token)                        # controls need the token; a wrong one raises
    snapshot = ROOMS.get("stats101").snapshot()  # what every viewer draws: immutable, no lock

How it is shared:

* **One run, one process.** A :class:`Room` owns one :class:`funnelkit.app.live.LiveRun`, trained in a
  process of its own (:mod:`funnelkit.app.room_process`) while the presenter has it playing, so that the
  training never holds the server's interpreter lock: the server's threads only serve pages. The
  process trains in short chunks and sends a frame after each (what is new in the loss history, and
  the pictures when they were drawn again: once for the whole room, at most every 0.25 s and at most a
  quarter of the process's time). The presenter's buttons are requests to the process; each returns
  once the process did it, with the snapshot that shows it.
* **Snapshots, not locks, for viewers.** Each frame becomes a :class:`Snapshot`: the iteration, the
  loss history, the density grid, the samples and the data, as read-only numpy arrays in a frozen
  dataclass. Publishing is one attribute assignment, so a viewer reads the latest snapshot without
  taking a lock and always sees one consistent moment (all its fields come from the same step). A
  viewer costs the server nothing but that read.
* **Bounded memory.** A room holds one run (in its process) and one snapshot (the previous snapshot is
  freed once no page draws it); at most :data:`MAX_ROOMS` rooms exist, and a room nobody has read or
  controlled for :data:`IDLE_DROP_S` seconds is dropped, its process ended.

:data:`ACTIVITY` counts the trainings this server runs now (rooms and, where the dashboard reports
them, independent sessions), so that a page can say when the machine is shared.
"""

import dataclasses
import re
import secrets
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..validation import check_int
from . import live
from .frames import recent_loss
from .live_settings import LiveSettings
from .room_process import TrainingProcess

NAME_RULE = "1 to 32 characters: lowercase letters a-z, digits and hyphens, starting and ending with a letter or digit"
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
MAX_ROOMS = 16  # rooms one server holds at once
IDLE_DROP_S = 2 * 3600.0  # a room nobody has looked at or controlled for this long is dropped


class RoomError(ValueError):
    """A room name that is not allowed, a room that does not exist, or one too many rooms."""


class NotPresenter(PermissionError):
    """A control (Play, Pause, ...) came without the room's presenter token."""


def check_room_name(name):
    """``name`` as a room name (stripped, lower case); raises :class:`RoomError` naming the rule."""
    if not isinstance(name, str):
        raise RoomError(f"a room name must be text ({NAME_RULE}), got {type(name).__name__}")
    cleaned = name.strip().lower()
    if not _NAME.fullmatch(cleaned):
        raise RoomError(f"room name {name!r} is not allowed: use {NAME_RULE}, for example 'stats101'")
    return cleaned


def _frozen(array):
    """``array`` made read-only (it must be the snapshot's own, as what came through the pipe is): a
    snapshot's arrays cannot be changed by a page that draws them."""
    array.setflags(write=False)
    return array


def _frozen_pictures(pictures):
    return live.Pictures(step=pictures.step, axis=_frozen(pictures.axis), log_density=_frozen(pictures.log_density),
                         samples=_frozen(pictures.samples), data=_frozen(pictures.data))


@dataclass(frozen=True)
class Snapshot:
    """One consistent moment of a room's run: everything a viewer's page draws.

    ``version`` grows by one with each snapshot of the room, so a page can tell a new one from the
    one it drew. ``steps`` and ``losses`` are the whole loss history (read-only arrays of equal
    length, ending at ``iteration``); ``pictures`` were drawn at ``pictures.step`` <= ``iteration``.
    """

    room: str
    room_id: str  # this opening of the room (a room closed and opened again under its name gets another)
    version: int
    drawn_version: int  # the version at which ``pictures`` were drawn: equal for snapshots sharing them
    iteration: int
    playing: bool
    steps: np.ndarray
    losses: np.ndarray
    pictures: live.Pictures
    settings: LiveSettings
    source: str
    lr: float
    reference: float | None
    parameters: int
    steps_per_second: float | None
    message: str | None
    made_at: float  # time.time() when it was published

    @property
    def last_loss(self):
        """The mean loss of the last 20 steps, as :attr:`funnelkit.app.live.LiveRun.last_loss`."""
        return recent_loss(self.losses)


class Activity:
    """Who trains in this process now: each training reports itself with :meth:`beat` while it
    trains; :meth:`count` is how many reported within the last ``within`` seconds."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._last = {}

    def beat(self, who):
        self._last[who] = self._clock()

    def done(self, who):
        self._last.pop(who, None)

    def count(self, within=2.0):
        now = self._clock()
        stale = [who for who, at in list(self._last.items()) if now - at > within]
        for who in stale:
            self._last.pop(who, None)
        return len(self._last)


ACTIVITY = Activity()


def shared_line(trainings):
    """One line for a page when more than one training runs on this server, else ``None``."""
    if trainings <= 1:
        return None
    return (f"This machine is shared: {trainings} trainings run on this server now, so each trains more slowly "
            "than it would alone.")


class Room:
    """One live run trained in a process of its own (:mod:`funnelkit.app.room_process`), watched through
    :meth:`snapshot`.

    ``settings`` (a :class:`funnelkit.app.LiveSettings`) pick the run; on four circles it starts
    from the shipped model, as an independent session does. ``resolution``, ``n_samples`` and
    ``n_data`` size the pictures; ``threads`` are the training process's torch threads (by default
    this process's). Use :meth:`Rooms.open` rather than the constructor in an app.
    """

    def __init__(self, name, settings=None, device="cpu", resolution=100, n_samples=1000, n_data=500,
                 clock=time.monotonic, threads=None):
        self.name = check_room_name(name)
        settings = LiveSettings() if settings is None else settings
        if not isinstance(settings, LiveSettings):
            raise ValueError(f"settings must be LiveSettings, got {type(settings).__name__}")
        self.token = secrets.token_urlsafe(16)
        self._clock = clock
        self._version = 0
        self._drawn_version = 0
        self._room_id = secrets.token_hex(8)
        self._viewers = {}  # viewer id -> when it last read a snapshot (for watching())
        self._snapshot = None
        self._closed = threading.Event()
        self.last_seen = clock()
        self.error = None  # the training process ended without being asked, as text (the room then pauses)
        threads = torch.get_num_threads() if threads is None else threads
        self._process = TrainingProcess(settings, device, (resolution, n_samples, n_data), self._receive,
                                        self._ended, threads=threads, name=f"room-{self.name}")

    # -- what viewers read -----------------------------------------------------------------------
    def snapshot(self, viewer=None):
        """The latest :class:`Snapshot` (no lock: publishing replaces it in one assignment).

        ``viewer``: an id of the page reading it (any hashable), counted by :meth:`watching`.
        """
        now = self._clock()
        self.last_seen = now
        if viewer is not None:
            self._viewers[viewer] = now
        return self._snapshot

    def watching(self, within=3.0):
        """How many viewers read a snapshot within the last ``within`` seconds (older ones are forgotten)."""
        now = self._clock()
        for viewer, at in list(self._viewers.items()):
            if now - at > within:
                self._viewers.pop(viewer, None)
        return len(self._viewers)

    @property
    def playing(self):
        return self._snapshot.playing and not self.closed

    @property
    def closed(self):
        return self._closed.is_set()

    @property
    def training_alive(self):
        """Whether the room's training process runs."""
        return self._process.alive

    def is_presenter(self, token):
        """Whether ``token`` is this room's presenter token (compared in constant time)."""
        return isinstance(token, str) and secrets.compare_digest(token.encode(), self.token.encode())

    # -- the presenter's controls ----------------------------------------------------------------
    def _control(self, token, action, *args):
        if not self.is_presenter(token):
            raise NotPresenter(f"only the presenter controls room {self.name!r}: this link has no token or a "
                               "wrong one (the presenter's link ends in &token=...)")
        if self.closed:
            raise RoomError(f"room {self.name!r} was closed; open it again")
        if self.error is not None:
            raise RoomError(f"room {self.name!r} stopped ({self.error}); close it and open it again")
        self.last_seen = self._clock()
        self._process.request(action, *args)
        return self._snapshot

    def play(self, token):
        """Train in the background until :meth:`pause` (also ends a pause the run made after a divergence)."""
        return self._control(token, "play")

    def pause(self, token):
        """Stop training after the current chunk (at most :data:`funnelkit.app.room_process.TRAIN_CHUNK_S`)."""
        return self._control(token, "pause")

    def step(self, token, n=1):
        """``n`` training steps now (while paused: the Step button)."""
        return self._control(token, "step", n)

    def reset(self, token):
        """A fresh, untrained model with the same settings; the room pauses."""
        return self._control(token, "reset")

    def load_pretrained(self, token):
        """The shipped model of the room's settings; raises ``ValueError`` when there is none."""
        return self._control(token, "load_pretrained")

    def apply(self, token, settings):
        """New settings for the room's run (as :meth:`funnelkit.app.live.LiveRun.apply`): returns the snapshot."""
        if not isinstance(settings, LiveSettings):
            raise ValueError(f"settings must be LiveSettings, got {type(settings).__name__}")
        return self._control(token, "apply", settings)

    def close(self):
        """Stop the training process (it finishes its current chunk)."""
        self._closed.set()
        ACTIVITY.done(self)
        self._process.close()

    # -- frames from the training process ------------------------------------------------------
    def _receive(self, frame):
        """Turn a :class:`funnelkit.app.room_process.Frame` into the next snapshot (the thread that reads frames)."""
        last = self._snapshot
        if frame.history_start == 0 or last is None:
            steps, losses = frame.steps, frame.losses
        else:
            if frame.history_start != last.steps.size:
                raise RuntimeError(f"a frame continues the loss history at {frame.history_start}, but "
                                   f"{last.steps.size} steps were received")
            steps = np.concatenate([last.steps, frame.steps])
            losses = np.concatenate([last.losses, frame.losses])
        if frame.pictures is not None or last is None:
            pictures = _frozen_pictures(frame.pictures)
            self._drawn_version = self._version + 1
        else:
            pictures = last.pictures
        if frame.playing and not self.closed:
            ACTIVITY.beat(self)
        else:
            ACTIVITY.done(self)
        self._version += 1
        self._snapshot = Snapshot(
            room=self.name, room_id=self._room_id, version=self._version, drawn_version=self._drawn_version,
            iteration=frame.iteration, playing=frame.playing, steps=_frozen(steps), losses=_frozen(losses),
            pictures=pictures, settings=frame.settings, source=frame.source, lr=frame.lr, reference=frame.reference,
            parameters=frame.parameters, steps_per_second=frame.steps_per_second,
            message=frame.message or self.error, made_at=frame.made_at,
        )

    def _ended(self, text):
        """The training process ended without being asked: the room pauses and says so."""
        self.error = text
        ACTIVITY.done(self)
        last = self._snapshot
        self._version += 1
        self._snapshot = dataclasses.replace(last, version=self._version, playing=False, message=text,
                                             made_at=time.time())


class Rooms:
    """The rooms of one process, by name; :data:`ROOMS` is the dashboard's.

    ``max_rooms`` bounds how many exist at once; a room not read or controlled for ``idle_s``
    seconds is dropped (its training process ended) the next time the registry is used.
    """

    def __init__(self, max_rooms=MAX_ROOMS, idle_s=IDLE_DROP_S, clock=time.monotonic):
        max_rooms = check_int(max_rooms, "max_rooms", low=1)
        if not idle_s > 0:
            raise ValueError(f"idle_s must be a positive number of seconds, got {idle_s!r}")
        self.max_rooms, self.idle_s = max_rooms, idle_s
        self._clock = clock
        self._rooms = {}
        self._lock = threading.Lock()  # opening and dropping; get() reads the dict without it

    def open(self, name, settings=None, device="cpu", **room_options):
        """A new room called ``name``; raises :class:`RoomError` if it exists or too many do."""
        name = check_room_name(name)
        with self._lock:
            self._drop_idle()
            if name in self._rooms:
                raise RoomError(f"room {name!r} is already open: only its presenter link controls it")
            if len(self._rooms) >= self.max_rooms:
                raise RoomError(f"this server already holds {len(self._rooms)} rooms, the most it keeps "
                                f"(rooms idle for {self.idle_s / 60:.0f} minutes are closed)")
            room = Room(name, settings, device=device, clock=self._clock, **room_options)
            self._rooms[name] = room
            return room

    def get(self, name):
        """The open room ``name``, or ``None`` (an idle room is dropped first)."""
        name = check_room_name(name)
        room = self._rooms.get(name)
        if room is not None and self._clock() - room.last_seen > self.idle_s:
            self.drop(name)
            return None
        return room

    def drop(self, name):
        """Close and forget room ``name`` (nothing happens if it is not open)."""
        with self._lock:
            room = self._rooms.pop(check_room_name(name), None)
        if room is not None:
            room.close()

    def names(self):
        with self._lock:
            self._drop_idle()
            return sorted(self._rooms)

    def close_all(self):
        for name in list(self._rooms):
            self.drop(name)

    def _drop_idle(self):
        """Close the rooms idle for longer than ``idle_s`` (called with the lock held)."""
        now = self._clock()
        for name in [n for n, room in self._rooms.items() if now - room.last_seen > self.idle_s]:
            self._rooms.pop(name).close()


ROOMS = Rooms()
