"""What the Samples and Compare tabs show (run, temperature, number of samples, seed, comparison),
read from and written to URL query values, so a link opens the same grid."""

from dataclasses import asdict, dataclass, fields, replace

from .sampling import LIMITS, check_sample_request


@dataclass(frozen=True)
class SampleSettings:
    """The Samples and Compare tabs' settings: a run key, the temperature, how many samples, the
    seed, and a comparison key (None: the default). Checked on creation (ValueError)."""

    run: str = None
    temperature: float = 1.0
    samples: int = 64
    sample_seed: int = 0
    compare: str = None

    def __post_init__(self):
        n, temperature, seed = check_sample_request(self.samples, self.temperature, self.sample_seed)
        low, high = LIMITS["temperature"]
        if not low <= temperature <= high:
            raise ValueError(f"the temperature must be from {low:g} to {high:g}, got {temperature:g}")
        object.__setattr__(self, "temperature", round(temperature, 4))
        object.__setattr__(self, "samples", n)
        object.__setattr__(self, "sample_seed", seed)
        for name in ("run", "compare"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{name} must be a run name (text), got {value!r}")

    def to_query(self):
        values = {name: value for name, value in asdict(self).items() if value is not None}
        return {name: f"{value:g}" if isinstance(value, float) else str(value) for name, value in values.items()}

    @classmethod
    def from_query(cls, query):
        """Settings from URL query values; returns ``(settings, problems)``: a bad value is
        replaced by its default and described in ``problems``; other keys are left alone."""
        defaults = cls()
        values, problems = asdict(defaults), []
        parsers = {"run": str, "temperature": float, "samples": int, "sample_seed": int, "compare": str}
        for item in fields(cls):
            if item.name not in query:
                continue
            raw = query[item.name]
            raw = raw[-1] if isinstance(raw, (list, tuple)) and raw else raw
            try:
                value = parsers[item.name](raw)
                replace(defaults, **{item.name: value})
            except (TypeError, ValueError) as error:
                reason = str(error) if not str(error).startswith(("invalid literal", "could not convert")) \
                    else f"expected a {'whole ' if parsers[item.name] is int else ''}number"
                problems.append(f"The link's {item.name}={raw!r} was ignored: {reason}. "
                                f"Using {getattr(defaults, item.name)!r} instead.")
                continue
            values[item.name] = value
        return cls(**values), problems


__all__ = ["SampleSettings"]
