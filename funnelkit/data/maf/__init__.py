"""The MAF preprocessing of the five tabular sets, one module per set.

Each module reproduces one loader of MAF (github.com/gpapamak/maf, ``datasets/*.py``; NSF and
the Funnels code copy them) step by step, quirks included, and exposes ``load(paths)`` that
returns ``(train, val, test)`` float32 arrays. :mod:`~funnelkit.data.maf.archive` knows the
archive's layout, :mod:`~funnelkit.data.maf.common` the steps the sets share and
:mod:`~funnelkit.data.maf.legacy_pickle` reads GAS's old pandas pickle. The public entry point
is :func:`funnelkit.data.tabular`, which adds the cache.
"""

from . import bsds300, gas, hepmass, miniboone, power

LOADERS = {
    "power": power,
    "gas": gas,
    "hepmass": hepmass,
    "miniboone": miniboone,
    "bsds300": bsds300,
}
