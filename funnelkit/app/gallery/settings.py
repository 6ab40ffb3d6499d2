"""What the Samples and Compare tabs show (run, temperature, what it tempers, number of samples, seed,
comparison), read from and written to URL query values, so a link opens the same grid."""

from dataclasses import dataclass

from .. import url_query

from ...models.tempering import check_temper
from .sampling import LIMITS, check_sample_request


@dataclass(frozen=True)
class SampleSettings:
    """The Samples and Compare tabs' settings: a run key, the temperature, what it tempers (``temper``:
    "base", the paper's; "all"; "mean"), how many samples, the seed, and a comparison key (None: the
    default). Checked on creation (ValueError)."""

    run: str = None
    temperature: float = 1.0
    samples: int = 64
    sample_seed: int = 0
    compare: str = None
    temper: str = "base"

    def __post_init__(self):
        n, temperature, seed = check_sample_request(self.samples, self.temperature, self.sample_seed)
        low, high = LIMITS["temperature"]
        if not low <= temperature <= high:
            raise ValueError(f"the temperature must be from {low:g} to {high:g}, got {temperature:g}")
        object.__setattr__(self, "temperature", round(temperature, 4))
        object.__setattr__(self, "samples", n)
        object.__setattr__(self, "sample_seed", seed)
        check_temper(self.temper)
        for name in ("run", "compare"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{name} must be a run name (text), got {value!r}")

    def to_query(self):
        return url_query.to_query(self)

    @classmethod
    def from_query(cls, query):
        """Settings from URL query values; returns ``(settings, problems)``: a bad value is
        replaced by its default and described in ``problems``; other keys are left alone."""
        return url_query.from_query(cls, query, _parse)


def _parse(name, raw):
    """One URL value as the type of setting ``name``; raises ``ValueError``."""
    text = str(raw).strip()
    if name in ("run", "compare"):
        return text
    if name == "temper":
        return text.lower()
    kind = float if name == "temperature" else int
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"expected a {'whole ' if kind is int else ''}number") from None


__all__ = ["SampleSettings"]
