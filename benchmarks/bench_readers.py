"""What the checks on hostile and broken data files cost (issue 10, item 3), on real-sized files.

1. GAS: a synthetic pickle of the archive's size (1,052,065 rows; Time, Meth, Eth and 16
   sensors; float64 / int64), written here by the installed pandas in a temporary folder, with
   pandas' default protocol 5 and with protocol 2 (the archive's protocol; arrays through
   ``_reconstruct`` and a state). Read with the checks (:func:`read_legacy_dataframe`: the
   opcode scan, the checked numpy globals, the size budget) and without them (the same reader
   with numpy's own globals and no scan, ``_read_frame(path, checked=False)``). The scan is also
   timed alone.
2. Fashion-MNIST: the official test set shipped in ``data/`` (10,000 images, gzip), and the same
   files unpacked. With the checks: :func:`funnelkit.data.idx.read_idx_set` (magic numbers,
   sizes against the file, the pairing, the 28x28 shape, labels 0..9). Without: the bare read
   (decompress, ``np.frombuffer`` after the header, reshape).

Loads with and without the checks alternate in one run (the order reversed every round), so both
see the same machine load; medians over the rounds. Writes benchmarks/results/readers.json and
.md. Run: ``python benchmarks/bench_readers.py`` (about 2 minutes; 0.5 GB of temporary files).
"""

import gzip
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_common import save_results  # this folder is on sys.path when run as a script
from funnelkit.data.idx import read_idx_set
from funnelkit.data.maf.legacy_pickle import _read_frame
from funnelkit.data.maf.pickle_scan import scan_pickle

REPO = Path(__file__).resolve().parents[1]
GAS_ROWS = 1_052_065  # the archive's ethylene_CO.pickle (docs: reference data-and-metrics A.3)
ROUNDS = 9
FASHION = [REPO / "data" / f"fashion-mnist-t10k-{kind}-ubyte.gz" for kind in ("images-idx3", "labels-idx1")]


def write_gas_pickle(folder, protocol):
    import pandas as pd

    rng = np.random.default_rng(0)
    columns = {"Time": np.round(rng.uniform(0, 40000, GAS_ROWS), 2),
               "Meth": rng.integers(0, 600, GAS_ROWS), "Eth": rng.integers(0, 20, GAS_ROWS)}
    columns.update({f"sensor{i}": rng.normal(1000, 300, GAS_ROWS) for i in range(16)})
    frame = pd.DataFrame(columns, index=rng.permutation(4 * GAS_ROWS)[:GAS_ROWS])
    frame.columns = pd.Index(list(columns), dtype=object)  # object labels, as pandas < 3 stores them
    path = Path(folder) / f"ethylene_CO-protocol{protocol}.pickle"
    frame.to_pickle(path, protocol=protocol)
    return path, pd.__version__


def bare_idx(path):
    """The idx values without a single check: decompress, skip the header, reshape."""
    with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
        raw = f.read()
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def scan_only(path):
    with open(path, "rb") as f:
        scan_pickle(f, path.stat().st_size)


def interleaved(pairs):
    """Median seconds of each named loader; the loaders alternate, order reversed every round."""
    times = {name: [] for name in pairs}
    names = list(pairs)
    for name in names:  # one warm-up each (page cache, imports)
        pairs[name]()
    for round_ in range(ROUNDS):
        for name in (names if round_ % 2 == 0 else names[::-1]):
            started = time.perf_counter()
            pairs[name]()
            times[name].append(time.perf_counter() - started)
    return {name: {"median_s": statistics.median(t), "min_s": min(t), "runs": len(t)}
            for name, t in times.items()}


def case(label, file_mb, checked, unchecked, extra=None):
    loaders = {"with checks": checked, "without checks": unchecked, **(extra or {})}
    timing = interleaved(loaders)
    with_, without = timing["with checks"]["median_s"], timing["without checks"]["median_s"]
    entry = {"file": label, "file_MB": round(file_mb, 1), "timing": timing,
             "overhead_percent_of_median": 100 * (with_ - without) / without}
    if "scan alone" in timing:
        entry["scan_percent_of_checked_load"] = 100 * timing["scan alone"]["median_s"] / with_
    return entry


def main():
    entries = []
    with tempfile.TemporaryDirectory() as folder:
        versions = None
        for protocol in (5, 2):
            path, versions = write_gas_pickle(folder, protocol)
            names, columns = _read_frame(path, checked=True)
            assert len(names) == 19 and len(columns[0]) == GAS_ROWS
            entries.append(case(f"GAS pickle, {GAS_ROWS:,} rows x 19, protocol {protocol} (pandas {versions})",
                                path.stat().st_size / 1e6,
                                lambda p=path: _read_frame(p, checked=True),
                                lambda p=path: _read_frame(p, checked=False),
                                {"scan alone": lambda p=path: scan_only(p)}))
            path.unlink()
        plain = []
        for gz in FASHION:
            target = Path(folder) / gz.name[:-3]
            target.write_bytes(gzip.decompress(gz.read_bytes()))
            plain.append(target)
        for files, kind in ((FASHION, "gzip, as shipped"), (plain, "unpacked")):
            size = sum(p.stat().st_size for p in files) / 1e6
            entries.append(case(f"Fashion-MNIST test set, 10,000 images ({kind})", size,
                                lambda f=files: read_idx_set(*f, dataset="fashion-mnist"),
                                lambda f=files: (bare_idx(f[0]), bare_idx(f[1]))))
    result = {"python": sys.version.split()[0], "numpy": np.__version__, "machine": platform.processor()
              or platform.machine(), "rounds": ROUNDS, "target": "overhead under 1% of a load",
              "entries": entries}
    lines = ["# Readers: the cost of the checks on hostile and broken files (issue 10, item 3)", "",
             f"`python benchmarks/bench_readers.py`; Python {result['python']}, numpy {np.__version__}; "
             f"loads with and without the checks alternate, {ROUNDS} rounds, medians (seconds).", "",
             "| file | MB | with checks | without | overhead | scan alone |", "|---|---|---|---|---|---|"]
    for e in entries:
        t = e["timing"]
        scan = f"{t['scan alone']['median_s'] * 1e3:.2f} ms ({e['scan_percent_of_checked_load']:.3f}%)" \
            if "scan alone" in t else "-"
        lines.append(f"| {e['file']} | {e['file_MB']} | {t['with checks']['median_s']:.4f} | "
                     f"{t['without checks']['median_s']:.4f} | {e['overhead_percent_of_median']:+.2f}% | {scan} |")
    lines += ["", "Overhead: (with - without) / without, of the medians; on a shared machine the "
              "difference of two medians carries the machine's noise (compare the minima in the JSON). "
              "The GAS checks are the opcode scan (timed alone: it seeks past the array data) and a "
              "few comparisons per array; the idx checks are the header comparisons and one pass "
              "over the 10,000 labels.", ""]
    save_results("readers", result, "\n".join(lines))


if __name__ == "__main__":
    main()
