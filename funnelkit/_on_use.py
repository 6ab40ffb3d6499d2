"""A package whose names are imported on first use (PEP 562): ``import funnelkit`` and ``import
funnelkit.models`` load nothing heavy until a name is asked for, so a program (the dashboard's first page,
``funnelkit --help``) pays only for what it touches."""

import importlib


def on_use(package: str, names: dict, namespace: dict, submodules: tuple = ()):
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps each public name to ``(submodule,
    attribute)``; any other name is a submodule, imported when asked for. A value, once imported, is kept
    in ``namespace`` (the package's ``globals()``). A public name must not also be a submodule's name
    (importing that submodule would replace it: a test checks)."""

    def __getattr__(name):
        if name in names:
            module, attribute = names[name]
            value = getattr(importlib.import_module(f".{module}", package), attribute)
        elif not name.startswith("__"):
            try:
                value = importlib.import_module(f".{name}", package)
            except ModuleNotFoundError as error:
                if error.name != f"{package}.{name}":
                    raise  # the submodule exists but one of its own imports is missing
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__():
        return sorted({*namespace, *names, *submodules})

    return __getattr__, __dir__
