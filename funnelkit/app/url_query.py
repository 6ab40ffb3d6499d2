"""Dashboard settings as URL query values, so a teacher can share a link that opens the same view.

Settings are frozen dataclasses that check themselves on creation (``ValueError``). A link's bad
value never stops the page: it is replaced by its default and described in a list of problems.
Used by :class:`funnelkit.app.live_settings.LiveSettings` and :class:`funnelkit.app.gallery.SampleSettings`.
"""

from dataclasses import asdict, fields, replace


def to_query(settings):
    """The settings as URL query values (text); a setting that is None (its default) is left out."""
    return {name: f"{value:g}" if isinstance(value, float) else str(value)
            for name, value in asdict(settings).items() if value is not None}


def from_query(cls, query, parse):
    """``(settings, problems)`` from URL query values.

    ``parse(name, raw)`` turns one value into its setting's type (or raises ``ValueError`` saying
    what was expected); each value is then checked on its own against the defaults. A bad value
    keeps its default and adds a sentence to ``problems``; a repeated key's last value wins; keys
    that are not settings are left alone.
    """
    defaults = cls()
    values, problems = asdict(defaults), []
    for field in fields(cls):
        if field.name not in query:
            continue
        raw = query[field.name]
        raw = raw[-1] if isinstance(raw, (list, tuple)) and raw else raw
        try:
            value = parse(field.name, raw)
            replace(defaults, **{field.name: value})  # check this value on its own
        except ValueError as error:
            problems.append(f"The link's {field.name}={raw!r} was ignored: {error}. "
                            f"Using {getattr(defaults, field.name)!r} instead.")
            continue
        values[field.name] = value
    return cls(**values), problems


__all__ = ["from_query", "to_query"]
