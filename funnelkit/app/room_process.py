"""A classroom room's training in a process of its own, and the server's handle on it.

A room (:mod:`funnelkit.app.room`) is watched by a whole class: 30 pages redraw its charts twice a second
or more, each redraw costing the server a few milliseconds of Python (the Plotly figures written as
JSON). Trained in a thread of the server, the room's training took 0.76 CPU-seconds a second of the
same interpreter, so the pages' redraws waited for the interpreter lock (measured: 1.4-1.85 redraws a
second per viewer, where 2 were asked for; ``benchmarks/results/room.md``). Here the training runs in
another process, with its own interpreter and core, and sends the server *frames*: what changed since
the last one (the new loss steps, the pictures when they were drawn again). The server only turns
frames into snapshots and figures, once for all its viewers.

    process = TrainingProcess(settings, device="cpu", picture_size=(100, 1000, 500), on_frame=print)
    process.request("play")                 # waits until the process did it (its frame came first)
    process.request("step", 3)              # an error in the process is raised here, as it was raised there
    process.close()

How it talks: one socket pair (a :class:`multiprocessing.connection.Connection` at each end). The
server sends ``(action, args)`` requests, one at a time; the process answers each after the frame
that shows its effect, so that when
:meth:`TrainingProcess.request` returns, ``on_frame`` has already seen that frame. While the room
plays, the process trains in chunks of :data:`TRAIN_CHUNK_S` and sends a frame after each; the
pictures (density grid, samples) are drawn at most every :data:`PUBLISH_EVERY_S`, and at most
:data:`DRAW_SHARE` of the time, as before. The process runs at a lower priority (:data:`NICE`) so that
on a machine with fewer free cores than rooms the pages are served first. It ends when asked, and
on its own when the server goes away (its pipe closes).

The process is a fresh interpreter, ``python -m funnelkit.app.room_process`` (opening a room waits for it
to import torch: 2-3 s), not a :mod:`multiprocessing` child: under Streamlit the server's
``__main__`` is the app script, which ``spawn`` and ``forkserver`` would run again in the child.
It needs a POSIX system (the socket is passed as a file descriptor).
"""

import contextlib
import math
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

TRAIN_CHUNK_S = 0.1  # training between two frames (and between two looks at the requests)
PUBLISH_EVERY_S = 0.25  # the pictures are redrawn at most this often (the iteration and loss every chunk)
DRAW_SHARE = 0.25  # ... and at most this share of the process's time goes to drawing them
NICE = 5  # how much lower the training's priority is than the server's (os.nice)
START_WAIT_S = 180.0  # how long opening a room waits for the process's first frame (a busy CI machine)
REQUEST_WAIT_S = 120.0  # how long a control waits for the process's answer
STOP_WAIT_S = 5.0  # how long closing waits for the process to end before it is terminated
ACTIONS = ("play", "pause", "step", "reset", "load_pretrained", "apply")


@dataclass(frozen=True)
class Frame:
    """What the training process sends after each chunk or request: one consistent moment of its run.

    The loss history comes as what is new: ``steps`` and ``losses`` start at index ``history_start`` of
    the run's history (0: the whole history, after a new model or a step back). ``pictures``
    (a :class:`funnelkit.app.live.Pictures`) is ``None`` when they were not drawn again since the last frame.
    """

    iteration: int
    playing: bool
    history_start: int
    steps: np.ndarray
    losses: np.ndarray
    pictures: object
    settings: object
    source: str
    lr: float
    reference: float | None
    parameters: int
    steps_per_second: float | None
    message: str | None
    made_at: float


class TrainingProcess:
    """The server's handle on one training process (see the module).

    ``settings`` (a :class:`funnelkit.app.live_settings.LiveSettings`) and ``device`` pick the run, as
    :meth:`funnelkit.app.live.LiveRun.create` does; ``picture_size`` is ``(resolution, n_samples, n_data)``;
    ``threads`` the process's torch threads (``None``: torch's default). ``on_frame(frame)`` is called
    in a thread of this process for every frame, in order; ``on_end(text)`` once if the process ends
    without being asked. The constructor returns after the first frame, or raises what building the
    run raised there (a ``ValueError`` for settings it cannot use).
    """

    def __init__(self, settings, device, picture_size, on_frame, on_end=None, threads=None, name="room"):
        self._on_frame, self._on_end = on_frame, on_end
        self._replies = queue.Queue()
        self._request_lock = threading.Lock()  # one request at a time: answers come in order
        self._closing = False
        self._reader = None
        ours, theirs = socket.socketpair()
        with theirs:
            package_root = str(Path(__file__).resolve().parents[1])
            path = os.pathsep.join([package_root, *filter(None, [os.environ.get("PYTHONPATH")])])
            self._process = subprocess.Popen(
                [sys.executable, "-m", "funnelkit.app.room_process", str(theirs.fileno()), name],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=path))
        self._connection = Connection(ours.detach())
        with contextlib.suppress(OSError):  # it ended at once: _first_message says so
            self._connection.send((settings, device, tuple(picture_size), threads))
        first = self._first_message()
        if first[0] == "failed":
            self._stop()
            raise first[1]
        self._on_frame(first[1])
        self._reader = threading.Thread(target=self._read, name=f"funnelkit-{name}-frames", daemon=True)
        self._reader.start()

    @property
    def pid(self):
        return self._process.pid

    @property
    def alive(self):
        return self._process.poll() is None

    def request(self, action, *args):
        """Do ``action`` (one of :data:`ACTIONS`) in the process; returns once its frame was handled.

        An exception the action raised there is raised here; ``RuntimeError`` if the process is gone.
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
        with self._request_lock:
            try:
                self._connection.send((action, args))
            except (OSError, EOFError, ValueError):
                raise RuntimeError("the room's training process has ended") from None
            try:
                error = self._replies.get(timeout=REQUEST_WAIT_S)
            except queue.Empty:
                raise RuntimeError(f"the room's training process did not answer within {REQUEST_WAIT_S:g} s") from None
        if error is not None:
            raise error

    def close(self):
        """Ask the process to end (it finishes its current chunk), and wait for it."""
        self._closing = True
        try:
            self._connection.send(None)
        except (OSError, EOFError, ValueError):
            pass
        self._stop()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(STOP_WAIT_S)

    # -- this side -------------------------------------------------------------------------------
    def _first_message(self):
        deadline = time.monotonic() + START_WAIT_S
        while not self._connection.poll(0.2):
            if not self.alive or time.monotonic() > deadline:
                self._stop()
                raise RuntimeError(f"the room's training process did not start within {START_WAIT_S:g} s "
                                   f"(exit code {self._process.returncode})")
        try:
            return self._connection.recv()
        except (EOFError, OSError):
            self._stop()
            raise RuntimeError(f"the room's training process ended while starting (exit code "
                               f"{self._process.returncode})") from None

    def _read(self):
        while True:
            try:
                message = self._connection.recv()
            except (EOFError, OSError):
                break
            if message[0] == "frame":
                self._on_frame(message[1])
            elif message[0] == "reply":
                self._replies.put(message[1])
        self._replies.put(RuntimeError("the room's training process has ended"))  # a request waiting
        if not self._closing and self._on_end is not None:
            try:
                self._process.wait(1.0)
            except subprocess.TimeoutExpired:
                pass
            self._on_end(f"the room's training process ended unexpectedly (exit code {self._process.returncode})")

    def _stop(self):
        try:
            self._process.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self._process.terminate()
            try:
                self._process.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._connection.close()


# -- the training process -----------------------------------------------------------------------
def main(argv=None):
    """The training process's entry point: ``python -m funnelkit.app.room_process FD NAME`` (FD: its end of
    the socket pair the server made)."""
    argv = sys.argv[1:] if argv is None else argv
    connection = Connection(int(argv[0]))
    try:
        settings, device, picture_size, threads = connection.recv()
    except (EOFError, OSError):
        return
    serve(connection, settings, device, picture_size, threads)


def serve(connection, settings, device, picture_size, threads):
    """The training process's loop (see the module): answer requests, train while playing."""
    try:
        os.nice(NICE)
    except (AttributeError, OSError):
        pass
    try:
        trainer = _Trainer(settings, device, picture_size, threads)
    except Exception as error:  # noqa: BLE001 - sent to the server, which raises it where the room was opened
        connection.send(("failed", _sendable(error)))
        return
    try:
        connection.send(("frame", trainer.frame(draw=True)))
        while True:
            wait = 0.0 if trainer.playing else 1.0
            while connection.poll(wait):
                message = connection.recv()
                if message is None:
                    return
                error = trainer.handle(*message)
                connection.send(("frame", trainer.frame(draw=True)))
                connection.send(("reply", error))
                wait = 0.0
            if trainer.playing:
                connection.send(("frame", trainer.train_chunk()))
    except (EOFError, OSError):  # the server went away
        return


class _Trainer:
    """The run inside the training process, and what of it was sent already."""

    def __init__(self, settings, device, picture_size, threads):
        import torch

        from . import live

        if threads:
            torch.set_num_threads(threads)
        self.run = live.LiveRun.create(settings, device=device, pretrained=True)
        self.picture_size = picture_size
        self.playing = False
        self.error = None  # an unexpected failure while training, as text (the room then pauses)
        self.drawn_at, self.draw_cost = -math.inf, 0.0
        self.sent = None  # (trainer, history length, its last loss) of the last frame

    def handle(self, action, args):
        """Do one request; returns the exception it raised (sent to the server), or ``None``."""
        try:
            if action == "play":
                self.run.play()
                self.playing, self.error = True, None
            elif action == "pause":
                self.playing = False
            elif action == "step":
                self.run.step(*args)
            elif action == "reset":
                self.playing = False
                self.run.reset()
            elif action == "load_pretrained":
                self.playing = False
                self.run.load_pretrained()
            elif action == "apply":
                self.run.apply(*args)
            else:
                raise ValueError(f"unknown action {action!r}")
        except Exception as error:  # noqa: BLE001 - raised again in the server, where the button was pressed
            return _sendable(error)
        return None

    def train_chunk(self):
        """About :data:`TRAIN_CHUNK_S` of training; the frame after it."""
        try:
            self.run.tick(TRAIN_CHUNK_S)
            if self.run.paused:  # it diverged, stepped back and said why in run.message
                self.playing = False
            return self.frame(draw=self._time_to_draw() or not self.playing)
        except Exception as error:  # noqa: BLE001 - a room must pause and say why, never die silently
            self.playing = False
            self.error = f"training stopped: {type(error).__name__}: {error}"
            return self.frame(draw=False)

    def _time_to_draw(self):
        wait = max(PUBLISH_EVERY_S, self.draw_cost * (1 - DRAW_SHARE) / DRAW_SHARE)
        return time.monotonic() - self.drawn_at >= wait

    def frame(self, draw):
        """The :class:`Frame` of the run now; ``draw``: with its pictures drawn again."""
        run = self.run
        pictures = None
        if draw:
            start = time.monotonic()
            pictures = run.pictures(*self.picture_size)
            self.drawn_at = time.monotonic()
            self.draw_cost = self.drawn_at - start
        history = run.trainer.history
        size = len(history["loss"])
        start = 0
        if self.sent is not None:
            trainer, sent_size, last = self.sent
            if trainer is run.trainer and 0 < sent_size <= size and history["loss"][sent_size - 1] == last:
                start = sent_size  # the same history, grown: only what is new
        self.sent = (run.trainer, size, history["loss"][-1] if size else None)
        return Frame(
            iteration=run.iteration, playing=self.playing, history_start=start,
            steps=np.asarray(history["step"][start:], dtype=np.int64),
            losses=np.asarray(history["loss"][start:], dtype=np.float64),
            pictures=pictures, settings=run.settings, source=run.source, lr=run.lr, reference=run.reference_nll(),
            parameters=run.model.num_parameters(), steps_per_second=run.steps_per_second,
            message=run.message or self.error, made_at=time.time(),
        )


def _sendable(error):
    """``error`` if it can cross the pipe (pickled), else a ``RuntimeError`` with its text."""
    import pickle

    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001 - any exception that does not pickle
        return RuntimeError(f"{type(error).__name__}: {error}")


if __name__ == "__main__":
    from funnelkit.app.room_process import main as _main  # the module's own classes, for pickling frames

    _main()
