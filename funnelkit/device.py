"""Pick the compute device once, and seed every random generator through one function."""

import random

import numpy as np
import torch

DEVICES = ("auto", "cpu", "cuda", "mps")


def pick_device(preference="auto"):
    """``cuda`` if available, else ``mps``, else ``cpu``; or the device asked for, if present.

    A ``torch.device`` (say ``cuda:1``, chosen by the caller) is returned as it is.
    """
    if isinstance(preference, torch.device):
        return preference
    if preference not in DEVICES:
        raise ValueError(f"unknown device {preference!r}; expected one of {', '.join(DEVICES)}")
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if preference == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (preference == "cuda" and not cuda) or (preference == "mps" and not mps):
        raise ValueError(f"device {preference!r} was asked for, but torch sees none on this machine")
    return torch.device(preference)


def seed_everything(seed):
    """Seed Python, NumPy and torch (CPU and CUDA): a seeded CPU run is repeatable."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
