"""Checks at the public edges: clear errors that name what was expected and what came."""

import math
import numbers

import torch


def check_batch(x, shape, dtype, name="x"):
    """Raise ``ValueError`` unless x is a finite ``(batch, *shape)`` tensor of ``dtype``.

    ``shape`` is an int (a width: vectors) or a tuple (for example ``(C, H, W)`` for images).
    """
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    expected = "(batch, " + ", ".join(map(str, shape)) + ")"
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape {expected}, got {type(x).__name__}")
    if tuple(x.shape[1:]) != shape or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape {expected} with batch >= 1, got {tuple(x.shape)}")
    if x.dtype != dtype:
        raise ValueError(
            f"{name} must have dtype {dtype} (the model's dtype), got {x.dtype}; "
            f"convert with x.to({dtype}) or the model with model.to({x.dtype})"
        )
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).flatten(1).any(dim=1).nonzero().flatten()[:5].tolist()
        raise ValueError(f"{name} must be finite; rows {bad} hold NaN or infinity")


def check_positive_int(n, name):
    """Return ``n`` as an ``int`` if it is a whole number >= 1.

    Any ``numbers.Integral`` counts (``int``, numpy integers such as ``np.int64(5)``); ``bool``,
    floats (also ``5.0``) and strings do not. Callers pass on the returned ``int``: torch and
    nflows accept only Python ints for sizes.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        kind = "" if isinstance(n, numbers.Integral) and not isinstance(n, bool) else f" ({type(n).__name__})"
        raise ValueError(f"{name} must be a positive int (a whole number >= 1; numpy integers work too), "
                         f"got {n!r}{kind}")
    return int(n)


def check_temperature(t):
    """Return ``t`` as a ``float`` if it is a positive finite real number (numpy floats too)."""
    if isinstance(t, bool) or not isinstance(t, numbers.Real) or not math.isfinite(t) or t <= 0:
        raise ValueError(f"temperature must be a positive finite number, got {t!r}")
    return float(t)


def check_choice(value, choices, name):
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(map(repr, choices))}")


def lowercase(value):
    """Names are matched without regard to case ("POWER" is "power"); other values pass unchanged."""
    return value.lower() if isinstance(value, str) else value
