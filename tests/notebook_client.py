"""Running a teaching notebook headless, as the tests and the notebook benchmark do.

``run_notebook`` executes a copy of a notebook in a given folder (its working directory: what it
writes lands there) with FUNNELKIT_QUICK=1 and MPLBACKEND=Agg, through :class:`ShellPollingClient`.

Why not nbclient's own client as it is: with pyzmq's asyncio sockets the client now and then
misses the wake-up for a cell's ``execute_reply`` on the shell channel. The reply sits in the
socket until the whole cell timeout has passed (measured here: notebook 06's widget cell, 4 of 12
runs under load stalled exactly 60 s with a 60 s timeout; the kernel had sent the reply at once;
with the tests' 600 s timeout that is a ten-minute stall). Asking for the reply in one-second
slices collects it within a second (0 stalls in 24 runs, ipykernel 6.31 and 7.4).
"""

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from queue import Empty
from time import monotonic

import nbclient
import nbformat

CELL_TIMEOUT = 600  # seconds per cell; quick mode needs a few
POLL_SLICE = 1.0  # seconds: the longest a missed wake-up can delay a reply


class ShellPollingClient(nbclient.NotebookClient):
    """nbclient's client, waiting for shell replies in slices of ``POLL_SLICE`` seconds."""

    async def async_start_new_kernel_client(self):
        client = await super().async_start_new_kernel_client()
        channel = client.shell_channel
        get_msg = channel.get_msg

        async def get_msg_in_slices(timeout=None, **kwargs):
            deadline = None if timeout is None else monotonic() + timeout
            while True:
                step = POLL_SLICE if deadline is None else max(0.0, min(POLL_SLICE, deadline - monotonic()))
                try:
                    return await get_msg(timeout=step, **kwargs)
                except Empty:
                    if deadline is not None and monotonic() >= deadline:
                        raise

        channel.get_msg = get_msg_in_slices
        return client


@contextmanager
def _quick_mode_environment():
    saved = {name: os.environ.get(name) for name in ("FUNNELKIT_QUICK", "MPLBACKEND")}
    os.environ.update(FUNNELKIT_QUICK="1", MPLBACKEND="Agg")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_notebook(path, folder, timeout=CELL_TIMEOUT):
    """Execute a copy of notebook ``path`` in quick mode in ``folder``; return the executed notebook.

    Raises ``nbclient.exceptions.CellExecutionError`` when a cell fails (its asserts included).
    """
    copy = Path(folder) / Path(path).name
    shutil.copy(path, copy)
    notebook = nbformat.read(copy, as_version=4)
    client = ShellPollingClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",  # jupyter_client starts it with this interpreter (sys.executable)
        resources={"metadata": {"path": str(folder)}},  # run in that folder: nothing lands in the repo
    )
    with _quick_mode_environment():
        client.execute()
    return notebook
