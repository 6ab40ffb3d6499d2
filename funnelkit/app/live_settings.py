"""What a user picks for a live 2-D run (dataset, model, sizes, learning rate, batch, seed), checked, and
to and from the page's URL. :class:`LiveSettings` raises ``ValueError`` naming the setting, the allowed
values and what came, so a bad value in a shared link becomes a message, not a traceback, and the
checks are testable without a browser; :meth:`LiveSettings.from_query` keeps the good values of a link
and says what it ignored. Imports neither torch nor numpy's heavier users: the dashboard draws its first
page with these before torch is loaded.
"""

import math
from dataclasses import asdict, dataclass

from ..models.plane_sizes import MODEL_NAMES, PRESETS
from ..paths import shipped_checkpoint
from ..validation import check_int
from . import url_query

#: The 2-D toys the dashboard offers: all of :data:`funnelkit.data.TOYS` (a test checks), named here because
#: ``funnelkit.data`` loads torch.
DATASETS = ("four-circles", "two-moons", "checkerboard", "eight-gaussians")
MODELS = MODEL_NAMES
PRESET = "quick"  # the architecture family of the live models; its sizes are the defaults
#: The learning rate a shipped model trains on at, unless the user picked another: its cosine
#: schedule ended at 0, and Adam at the default 3e-3 lifts the shipped four-circles loss from 2.898 to
#: about 3.0 within 100 steps; at 1e-4 (the rate of the schedule's last ~12 %) it stays within 0.01.
SHIPPED_CONTINUE_LR = 1e-4

#: Allowed ranges of the numeric settings: (smallest, largest).
LIMITS = {
    "hidden_features": (1, 512),
    "num_bins": (2, 64),
    "lr": (1e-5, 1.0),
    "batch_size": (1, 4096),
    "seed": (0, 2**31 - 1),
}

#: URL keys of links made before the settings took the kit's names, and those names.
OLD_QUERY_KEYS = {"hidden": "hidden_features", "bins": "num_bins", "batch": "batch_size"}

LABELS = {
    "dataset": "dataset",
    "model": "model",
    "hidden_features": "hidden units",
    "num_bins": "spline bins",
    "lr": "learning rate",
    "batch_size": "batch size",
    "seed": "seed",
}


@dataclass(frozen=True)
class LiveSettings:
    """What the user picks in the dashboard; the defaults are the shipped ``quick`` run.

    The field names are also the URL query keys (``?dataset=two-moons&hidden_features=32``).
    """

    dataset: str = "four-circles"
    model: str = "f-nsf"
    hidden_features: int = PRESETS[PRESET].hidden_features
    num_bins: int = PRESETS[PRESET].num_bins
    lr: float = 3e-3
    batch_size: int = 256
    seed: int = 0

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; expected one of {', '.join(DATASETS)}")
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; expected one of {', '.join(MODELS)}")
        # Numpy scalars become ints so that equal settings compare and hash equal.
        for name in ("hidden_features", "num_bins", "batch_size", "seed"):
            object.__setattr__(self, name, check_int(getattr(self, name), LABELS[name], *LIMITS[name]))
        low, high = LIMITS["lr"]
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not low <= self.lr <= high:
            raise ValueError(f"learning rate must be a number from {low:g} to {high:g}, got {self.lr!r}")
        object.__setattr__(self, "lr", float(self.lr))

    # -- the URL ------------------------------------------------------------------------------
    def to_dict(self):
        return asdict(self)

    def to_query(self):
        """The settings as URL query values (strings)."""
        return url_query.to_query(self)

    @classmethod
    def from_query(cls, query):
        """Settings from URL query values; returns ``(settings, problems)``: each bad value is
        replaced by its default and described in ``problems``, so a link with one typo still
        opens, with a message saying what was ignored (:func:`funnelkit.app.url_query.from_query`).
        A link made before the settings took the kit's names (``hidden``, ``bins``, ``batch``) still opens."""
        query = dict(query)
        for old, new in OLD_QUERY_KEYS.items():
            if old in query:
                query.setdefault(new, query.pop(old))
        return url_query.from_query(cls, query, _parse)

    # -- what differs between two settings ------------------------------------------------------
    @property
    def architecture(self):
        """What a model is built from: changing any of these needs a new model."""
        return (self.dataset, self.model, self.hidden_features, self.num_bins, self.seed)

    def plane_overrides(self):
        return {"hidden_features": self.hidden_features, "num_bins": self.num_bins}

    def pretrained_path(self):
        """The shipped checkpoint for these settings, or ``None`` when there is none.

        Checkpoints are shipped for four circles with the ``quick`` architecture; the learning
        rate, batch size and seed only affect how training continues from it.
        """
        quick = PRESETS[PRESET]
        if self.dataset != "four-circles" or (self.hidden_features, self.num_bins) != (quick.hidden_features, quick.num_bins):
            return None
        path = self.shipped_path()
        return path if path.is_file() else None

    def shipped_path(self):
        """Where the shipped four-circles checkpoint of this model is (it may not exist)."""
        return shipped_checkpoint("four-circles", self.model, PRESET)


def _parse(name, raw):
    """One URL value as the type of setting ``name``; raises ``ValueError``."""
    text = str(raw).strip()
    if name in ("dataset", "model"):
        return text
    if name == "lr":
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"learning rate must be a number, got {text!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"learning rate must be finite, got {text!r}")
        return value
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{LABELS[name]} must be a whole number, got {text!r}") from None
