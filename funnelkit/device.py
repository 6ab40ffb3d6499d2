"""Pick the compute device once, and seed every random generator through one function.

Every device the public API takes (``--device`` on the command line, ``fk.load(path, device=...)``,
the experiments, the dashboard's ``FUNNELKIT_APP_DEVICE``) goes through :func:`pick_device`, so a
name torch does not know, or a device this machine lacks, gives one message naming what was asked
for and what is here, instead of an error from deep inside torch.
"""

import random
from contextlib import contextmanager
import re

import numpy as np
import torch

DEVICES = ("auto", "cpu", "cuda", "mps")  # the names; "cuda:N" picks one of several GPUs
_FORM = re.compile(r"auto|cpu|mps(?::0)?|cuda(?::(\d+))?")  # an MPS tensor says "mps:0"


def available_devices():
    """The device names that work on this machine: ``auto``, ``cpu``, then ``cuda`` and
    ``cuda:0`` ... ``cuda:N-1`` where torch sees N CUDA GPUs, and ``mps`` where torch sees one."""
    names = ["auto", "cpu"]
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count:
        names += ["cuda"] + [f"cuda:{i}" for i in range(count)]
    if torch.backends.mps.is_available():
        names.append("mps")
    return names


def pick_device(preference="auto"):
    """``cuda`` if available, else ``mps``, else ``cpu``; or the device asked for, if present.

    ``preference`` is ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` (any case), or a
    ``torch.device`` of those kinds (a tensor's ``.device`` works). Raises ``ValueError`` naming the value and the devices of this
    machine (:func:`available_devices`) when the name is unknown or the device is absent.
    """
    given = preference
    if isinstance(preference, torch.device):
        preference = str(preference)
    if not isinstance(preference, str):
        raise ValueError(f"device must be a name such as 'cpu' or a torch.device, got {given!r} "
                         f"({type(given).__name__}); {_here()}")
    name = preference.strip().lower()
    form = _FORM.fullmatch(name)
    if form is None:
        raise ValueError(f"unknown device {given!r}: expected auto, cpu, cuda, cuda:N (N a GPU number) or mps; "
                         f"{_here()}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available()
                            else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {given!r} was asked for, but torch sees no CUDA GPU on this machine; {_here()}")
    if form.group(1) is not None and int(form.group(1)) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ValueError(f"device {given!r} was asked for, but this machine has {count} CUDA GPU"
                         f"{'' if count == 1 else 's'} (cuda:0 to cuda:{count - 1}); {_here()}")
    if name.startswith("mps") and not torch.backends.mps.is_available():
        raise ValueError(f"device {given!r} was asked for, but torch sees no MPS (Apple GPU) on this machine; "
                         f"{_here()}")
    return torch.device(name)


def _here():
    return f"available here: {', '.join(available_devices())}"


def seed_everything(seed):
    """Seed Python, NumPy and torch (CPU and CUDA): a seeded CPU run is repeatable."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def seeded(seed, device="cpu"):
    """Seed torch's global generator (and ``device``'s, on CUDA) inside a block, restoring its state afterwards:
    the same noise every time, and nothing outside the block is disturbed."""
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield
