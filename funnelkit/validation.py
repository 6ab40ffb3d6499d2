"""Checks at the public edges: clear errors that name what was expected and what came."""

import math
import numbers


def check_batch(x, shape, dtype, name="x"):
    """Raise ``ValueError`` unless x is a finite ``(batch, *shape)`` tensor of ``dtype``.

    ``shape`` is an int (a width: vectors) or a tuple (for example ``(C, H, W)`` for images).
    """
    import torch  # here, not at the top: the dashboard's light modules use this module before torch loads

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


def check_int(value, name, low=None, high=None, message=None):
    """Return ``value`` as an ``int`` if it is a whole number from ``low`` to ``high`` (``None``: no bound).

    Any ``numbers.Integral`` counts (``int``, numpy integers such as ``np.int64(5)``); ``bool``,
    floats (also ``5.0``) and strings do not. Callers pass on the returned ``int``: torch and
    nflows accept only Python ints for sizes. The ``ValueError`` says ``message`` (a format string of
    ``{name}``, ``{low}`` and ``{high}``; by default "<name> must be a whole number from LOW to HIGH",
    or "of at least LOW", "of at most HIGH") and then ", got <value>", naming the type of a value that
    is no whole number.
    """
    whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not whole or (low is not None and int(value) < low) or (high is not None and int(value) > high):
        kind = "" if whole else f" ({type(value).__name__})"
        message = message or "{name} must be " + _whole_number(low, high)
        raise ValueError(message.format(name=name, low=low, high=high) + f", got {value!r}{kind}")
    return int(value)


def _whole_number(low, high):
    """The words of :func:`check_int`'s default message for the bounds given."""
    if low is not None and high is not None:
        return "a whole number from {low} to {high}"
    if low is not None:
        return "a whole number of at least {low}"
    return "a whole number" if high is None else "a whole number of at most {high}"


def check_positive_int(n, name):
    """Return ``n`` as an ``int`` if it is a whole number >= 1 (see :func:`check_int`)."""
    return check_int(n, name, low=1,
                     message="{name} must be a positive int (a whole number >= 1; numpy integers work too)")


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
