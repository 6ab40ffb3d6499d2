"""Classroom rooms: one live training that any number of pages watch, controlled by one presenter.

A lecturer opens a room; every student's page shows the same run, live. Nothing here imports
streamlit: the dashboard (``app.py``, ``?room=NAME``) only reads snapshots and forwards the
presenter's buttons.

    room = ROOMS.open("stats101")                # a LiveRun (funnelkit.live) and its own thread
    room.token                                   # the presenter's secret (secrets.token_urlsafe)
    room.play(room.token)                        # controls need the token; a wrong one raises
    snapshot = ROOMS.get("stats101").snapshot()  # what every viewer draws: immutable, no lock

How it is shared:

* **One run, one thread.** A :class:`Room` owns one :class:`funnelkit.live.LiveRun` and trains it
  in a background thread of its own while the presenter has it playing, in short chunks of
  :data:`TRAIN_CHUNK_S` seconds with a pause of :data:`YIELD_S` between them, so the threads that
  serve pages get the interpreter often. The pictures are drawn in that thread too, once for the
  whole room: at most every :data:`PUBLISH_EVERY_S`, and on a slow machine less often, so that
  drawing takes at most :data:`DRAW_SHARE` of the thread's time (a drawing that took 0.2 s waits
  0.6 s for the next).
* **Snapshots, not locks, for viewers.** After each chunk the thread publishes a
  :class:`Snapshot`: the iteration, the loss history, the density grid, the samples and the data,
  as read-only numpy arrays in a frozen dataclass. Publishing is one attribute assignment, so a
  viewer reads the latest snapshot without taking a lock and always sees one consistent moment
  (all its fields come from the same step). A viewer costs the server nothing but that read.
* **Bounded memory.** A room holds one run and one snapshot (the previous snapshot is freed once
  no page draws it); at most :data:`MAX_ROOMS` rooms exist, and a room nobody has read or
  controlled for :data:`IDLE_DROP_S` seconds is dropped, its thread stopped.

:data:`ACTIVITY` counts the trainings running in this process now (rooms and, where the dashboard
reports them, independent sessions), so that a page can say when the machine is shared.
"""

import math
import re
import secrets
import threading
import time
from dataclasses import dataclass

import numpy as np

from . import live

NAME_RULE = "1 to 32 characters: lowercase letters a-z, digits and hyphens, starting and ending with a letter or digit"
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
MAX_ROOMS = 16  # rooms one server holds at once
IDLE_DROP_S = 2 * 3600.0  # a room nobody has looked at or controlled for this long is dropped
TRAIN_CHUNK_S = 0.1  # training between two snapshots (and between two looks at the controls)
#: The training thread sleeps this long after each chunk, so that it trains at most 2/3 of the time and the
#: threads that serve the pages get the interpreter (measured with 30 viewers on a busy 2-core machine: with
#: 0.01 s the training took the server's whole CPU share and the viewers' redraws stopped).
YIELD_S = 0.05
PUBLISH_EVERY_S = 0.25  # the pictures are redrawn at most this often (the iteration and loss every chunk)
DRAW_SHARE = 0.25  # ... and at most this share of the thread's time goes to drawing them
STOP_WAIT_S = 5.0  # how long closing a room waits for its thread's current chunk


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
    """A read-only copy of ``array``: a snapshot's arrays cannot be changed by a page that draws them."""
    out = np.array(array, copy=True)
    out.setflags(write=False)
    return out


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
    settings: live.LiveSettings
    source: str
    lr: float
    reference: float | None
    parameters: int
    steps_per_second: float | None
    message: str | None
    made_at: float  # time.time() when it was published

    @property
    def last_loss(self):
        """The mean loss of the last 20 steps, as :attr:`funnelkit.live.LiveRun.last_loss`."""
        tail = self.losses[-20:]
        return float(tail.mean()) if tail.size else None


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
    """One live run trained in a background thread, watched through :meth:`snapshot`.

    ``settings`` (a :class:`funnelkit.live.LiveSettings`) pick the run; on four circles it starts
    from the shipped model, as an independent session does. ``resolution``, ``n_samples`` and
    ``n_data`` size the pictures. Use :meth:`Rooms.open` rather than the constructor in an app.
    """

    def __init__(self, name, settings=None, device="cpu", resolution=100, n_samples=1000, n_data=500,
                 clock=time.monotonic):
        self.name = check_room_name(name)
        self.token = secrets.token_urlsafe(16)
        self._clock = clock
        self._picture_size = (resolution, n_samples, n_data)
        self._lock = threading.Lock()  # the run: the training thread against the presenter's buttons
        self._wake = threading.Event()  # set when Play is pressed or the room closes
        self._closed = threading.Event()
        self._playing = False
        self._version = 0
        self._drawn_version = 0
        self._drawn_at = -math.inf
        self._draw_cost = 0.0  # seconds the last drawing took
        self._room_id = secrets.token_hex(8)
        self._viewers = {}  # viewer id -> when it last read a snapshot (for watching())
        self._run = live.LiveRun.create(settings, device=device, pretrained=True)
        self.last_seen = clock()
        self.error = None  # an unexpected failure of the training thread, as text (the room then pauses)
        with self._lock:
            self._publish(draw=True)
        self._thread = threading.Thread(target=self._train_while_playing, name=f"funnelkit-room-{self.name}",
                                        daemon=True)
        self._thread.start()

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
        return self._playing

    @property
    def closed(self):
        return self._closed.is_set()

    def is_presenter(self, token):
        """Whether ``token`` is this room's presenter token (compared in constant time)."""
        return isinstance(token, str) and secrets.compare_digest(token.encode(), self.token.encode())

    # -- the presenter's controls ----------------------------------------------------------------
    def _control(self, token, action):
        if not self.is_presenter(token):
            raise NotPresenter(f"only the presenter controls room {self.name!r}: this link has no token or a "
                               "wrong one (the presenter's link ends in &token=...)")
        if self.closed:
            raise RoomError(f"room {self.name!r} was closed; open it again")
        self.last_seen = self._clock()
        with self._lock:
            action()
            self._publish(draw=True)
        return self._snapshot

    def play(self, token):
        """Train in the background until :meth:`pause` (also ends a pause the run made after a divergence)."""
        def start():
            self._run.play()
            self._playing = True
            self.error = None
        snapshot = self._control(token, start)
        self._wake.set()
        return snapshot

    def pause(self, token):
        """Stop training after the current chunk (at most :data:`TRAIN_CHUNK_S`)."""
        def stop():
            self._playing = False
        return self._control(token, stop)

    def step(self, token, n=1):
        """``n`` training steps now (while paused: the Step button)."""
        return self._control(token, lambda: self._run.step(n))

    def reset(self, token):
        """A fresh, untrained model with the same settings; the room pauses."""
        def fresh():
            self._playing = False
            self._run.reset()
        return self._control(token, fresh)

    def load_pretrained(self, token):
        """The shipped model of the room's settings; raises ``ValueError`` when there is none."""
        def shipped():
            self._playing = False
            self._run.load_pretrained()
        return self._control(token, shipped)

    def apply(self, token, settings):
        """New settings for the room's run (as :meth:`funnelkit.live.LiveRun.apply`): returns the snapshot."""
        if not isinstance(settings, live.LiveSettings):
            raise ValueError(f"settings must be LiveSettings, got {type(settings).__name__}")
        return self._control(token, lambda: self._run.apply(settings))

    def close(self):
        """Stop the training thread (waits for its current chunk)."""
        self._closed.set()
        self._playing = False
        self._wake.set()
        ACTIVITY.done(self)
        if self._thread is not threading.current_thread():
            self._thread.join(STOP_WAIT_S)

    # -- the training thread ---------------------------------------------------------------------
    def _train_while_playing(self):
        while not self._closed.is_set():
            if not self._playing:
                ACTIVITY.done(self)
                self._wake.wait(timeout=1.0)
                self._wake.clear()
                continue
            ACTIVITY.beat(self)
            try:
                with self._lock:
                    if self._playing and not self._closed.is_set():
                        self._run.tick(TRAIN_CHUNK_S)
                        if self._run.paused:  # it diverged, stepped back and said why in run.message
                            self._playing = False
                        self._publish(draw=self._time_to_draw() or not self._playing)
            except Exception as error:  # noqa: BLE001 - a room must pause and say why, never die silently
                self._playing = False
                self.error = f"training stopped: {type(error).__name__}: {error}"
            time.sleep(YIELD_S)

    def _time_to_draw(self):
        wait = max(PUBLISH_EVERY_S, self._draw_cost * (1 - DRAW_SHARE) / DRAW_SHARE)
        return time.monotonic() - self._drawn_at >= wait

    def _publish(self, draw):
        """Replace the snapshot (called with the lock held); ``draw``: redraw the pictures too."""
        run = self._run
        if draw or self._version == 0:
            resolution, n_samples, n_data = self._picture_size
            start = time.monotonic()
            pictures = _frozen_pictures(run.pictures(resolution, n_samples, n_data))
            self._drawn_at = time.monotonic()
            self._draw_cost = self._drawn_at - start
            self._drawn_version = self._version + 1
        else:
            pictures = self._snapshot.pictures
        history = run.trainer.history
        self._version += 1
        self._snapshot = Snapshot(
            room=self.name, room_id=self._room_id, version=self._version, drawn_version=self._drawn_version,
            iteration=run.iteration, playing=self._playing,
            steps=_frozen(np.asarray(history["step"], dtype=np.int64)),
            losses=_frozen(np.asarray(history["loss"], dtype=np.float64)),
            pictures=pictures, settings=run.settings, source=run.source, lr=run.lr,
            reference=run.reference_nll(), parameters=run.model.num_parameters(),
            steps_per_second=run.steps_per_second, message=run.message or self.error, made_at=time.time(),
        )


class Rooms:
    """The rooms of one process, by name; :data:`ROOMS` is the dashboard's.

    ``max_rooms`` bounds how many exist at once; a room not read or controlled for ``idle_s``
    seconds is dropped (its thread stopped) the next time the registry is used.
    """

    def __init__(self, max_rooms=MAX_ROOMS, idle_s=IDLE_DROP_S, clock=time.monotonic):
        if isinstance(max_rooms, bool) or not isinstance(max_rooms, int) or max_rooms < 1:
            raise ValueError(f"max_rooms must be a whole number >= 1, got {max_rooms!r}")
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
