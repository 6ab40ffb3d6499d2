"""The dashboard's Samples tab on this machine (issue 5), measured in one run.

1. Seconds from opening the Samples tab to the first grid:
   * headless (Streamlit's AppTest, ``?tab=Samples``, the default 64 samples at T = 1): a fresh
     session each time, with Streamlit's caches cleared, so the model is loaded and sampled
     anew; the first one also pays for importing torch and funnelkit (a cold process);
   * in a real browser (a Streamlit server started here, Debian's chromium driven by
     Playwright): from opening ``?tab=Samples`` in a new page to the grid on screen; the first
     page also pays for the server importing torch.
2. Images per second of every shipped image model at the paper's temperatures T = 0.5, 0.75
   and 1 (grids of 64, as the tab draws them: :func:`funnelkit.app.gallery.sample_grid`),
   one torch thread as the app runs. Draws of all models and temperatures are interleaved in
   blocks, the order reversed every other block, so all see the same machine load; medians.

Writes benchmarks/results/samples.json and .md. Run: `python benchmarks/bench_samples.py`
(about 2 minutes).
"""

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import funnelkit as fk
from bench_common import dashboard_in_chromium, save_results  # this folder is on sys.path when run as a script
from funnelkit.app import gallery
from funnelkit.experiments.shipped import SHIPPED_RUNS

REPO = Path(__file__).resolve().parents[1]
N = 64  # the tab's default number of samples


COLD = """
import time
start = time.perf_counter()
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({app!r}, default_timeout=300)
at.query_params["tab"] = "Samples"
at.run()
assert not at.exception and len(at.image) == 1, (at.exception, [e.value for e in at.error])
print(time.perf_counter() - start)
"""


def app_first_grid(repeats=5):
    """Seconds of AppTest runs of ``?tab=Samples``: once in a new Python process (importing
    streamlit, torch and funnelkit included), then fresh sessions with Streamlit's caches cleared."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ.update(FUNNELKIT_APP_DEVICE="cpu", FUNNELKIT_APP_RUNS=str(SHIPPED_RUNS), OMP_NUM_THREADS="1")
    cold = subprocess.run([sys.executable, "-c", COLD.format(app=str(REPO / "app.py"))], capture_output=True,
                          text=True, check=True, cwd=tempfile.gettempdir())
    seconds = [float(cold.stdout.strip().splitlines()[-1])]
    for _ in range(repeats):
        st.cache_data.clear()
        st.cache_resource.clear()
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
        at.query_params["tab"] = "Samples"
        start = time.perf_counter()
        at.run()
        seconds.append(time.perf_counter() - start)
        if at.exception or len(at.image) != 1:
            raise RuntimeError(f"the Samples tab did not draw its grid: {at.exception} {[e.value for e in at.error]}")
    return {"cold_s": seconds[0], "fresh_session_s": seconds[1:], "median_fresh_session_s": statistics.median(seconds[1:])}


def browser_first_grid(repeats=3):
    """Seconds from opening ``?tab=Samples`` in a new chromium page to the grid on screen."""
    seconds, connected = [], []
    with dashboard_in_chromium({"FUNNELKIT_APP_DEVICE": "cpu", "FUNNELKIT_APP_RUNS": str(SHIPPED_RUNS)}) \
            as (url, browser, _):
        for _ in range(repeats):
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            start = time.perf_counter()
            page.goto(f"{url}/?tab=Samples")
            page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']", timeout=180_000)
            connected.append(time.perf_counter() - start)
            page.locator("[data-testid='stImage'] img").first.wait_for(timeout=180_000)
            page.wait_for_function("() => { const i = document.querySelector(\"[data-testid='stImage'] img\");"
                                   " return i && i.complete && i.naturalWidth > 0; }", timeout=60_000)
            seconds.append(time.perf_counter() - start)
            page.close()
    return {"first_page_s": seconds[0], "later_pages_s": seconds[1:],
            "median_later_pages_s": statistics.median(seconds[1:]) if len(seconds) > 1 else None,
            "connected_s": connected}


def images_per_second(blocks=7, n=N, least_s=0.05):
    """Images per second of every shipped image model at each of the paper's temperatures.

    Each timing covers enough draws (the same for every temperature of a model) to last about
    ``least_s``, so that the fastest models are not timed at the clock's resolution."""
    torch.set_num_threads(1)  # as app.py runs (FUNNELKIT_APP_THREADS, default 1)
    runs = gallery.find_image_runs([SHIPPED_RUNS]).runs
    if not runs:
        raise RuntimeError(f"no shipped image runs in {SHIPPED_RUNS}")
    models = {run.key: fk.load(run.path) for run in runs}
    cases = [(run.key, t) for run in runs for t in gallery.PRESET_TEMPERATURES]
    draws = {}
    for run in runs:  # warm up, and size the timings
        start = time.perf_counter()
        for t in gallery.PRESET_TEMPERATURES:
            gallery.sample_grid(models[run.key], n, t, 0)
        draws[run.key] = max(1, round(least_s / ((time.perf_counter() - start) / 3)))
    times = {case: [] for case in cases}
    for block in range(blocks):
        for key, t in cases if block % 2 == 0 else reversed(cases):
            start = time.perf_counter()
            for i in range(draws[key]):
                gallery.sample_grid(models[key], n, t, block * 100 + i)
            times[key, t].append((time.perf_counter() - start) / draws[key])
    png_times = []
    grid = gallery.sample_grid(models[runs[0].key], n, 1.0, 0)
    for _ in range(20):
        start = time.perf_counter()
        gallery.png_bytes(grid)
        gallery.png_bytes(grid, gallery.display_factor(grid))
        png_times.append(time.perf_counter() - start)
    rows = []
    for run in runs:
        rows.append({
            "run": run.key, "model": run.model, "data": f"{run.dataset} {run.bits}-bit", "latent_dim": run.latent_dim,
            "parameters": run.parameters, "draws_per_timing": draws[run.key],
            "images_per_second": {f"{t:g}": n / statistics.median(times[run.key, t]) for t in gallery.PRESET_TEMPERATURES},
            "median_ms_per_grid": {f"{t:g}": 1000 * statistics.median(times[run.key, t])
                                   for t in gallery.PRESET_TEMPERATURES},
        })
    return {"n": n, "blocks": blocks, "threads": torch.get_num_threads(), "rows": rows,
            "png_ms_both_sizes": 1000 * statistics.median(png_times)}


def main():
    torch.set_num_threads(1)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, 1 torch thread, torch {torch.__version__}",
        "device": "cpu",
        "app_first_grid": app_first_grid(),
        "browser_first_grid": browser_first_grid(),
        "images_per_second": images_per_second(),
    }
    save_results("samples", result, markdown(result))


def markdown(r):
    a, b, s = r["app_first_grid"], r["browser_first_grid"], r["images_per_second"]
    temperatures = list(s["rows"][0]["images_per_second"])
    lines = [
        "# Samples tab benchmarks", "",
        f"Machine: {r['machine']}; the models on the {r['device']}. Run: `python benchmarks/bench_samples.py`.", "",
        f"## From opening the Samples tab to the first grid ({N} samples at T = 1, the shipped F-NSF, MNIST 5-bit)", "",
        f"- Headless (AppTest, `?tab=Samples`): **{a['median_fresh_session_s']:.2f} s** median of "
        f"{len(a['fresh_session_s'])} fresh sessions with Streamlit's caches cleared (so the model is loaded and "
        f"sampled each time); {a['cold_s']:.1f} s in a new Python process (importing streamlit, torch and "
        "funnelkit included).",
        f"- In chromium (a Streamlit server started here): {b['first_page_s']:.1f} s for the first page "
        "(the server imports torch for its first session)"
        + (f", then **{b['median_later_pages_s']:.1f} s** median for new pages" if b["median_later_pages_s"] else "")
        + f"; of which {statistics.median(b['connected_s']):.1f} s (median) pass before the page's frontend has "
        "connected to the server at all.",
        "",
        f"## Images per second at the paper's temperatures (grids of {s['n']}, {s['threads']} torch thread, "
        f"median of {s['blocks']} interleaved draws)", "",
        "| run | model | data | latent | " + " | ".join(f"T = {t}" for t in temperatures) + " |",
        "| --- | --- | --- | ---: | " + " | ".join("---:" for _ in temperatures) + " |",
    ]
    for row in s["rows"]:
        lines.append(f"| `{row['run'].split('/', 1)[1]}` | {gallery.MODEL_NAMES[row['model']]} | {row['data']} | "
                     f"{row['latent_dim']:,} | " + " | ".join(f"{row['images_per_second'][t]:,.0f}" for t in temperatures)
                     + " |")
    lines += ["", f"Encoding a grid of {s['n']} as PNG, at its size and enlarged for the screen: "
              f"{s['png_ms_both_sizes']:.1f} ms.", "",
              "The temperature only scales the base noise (the same operations at every T). Across the three "
              f"temperatures a model's rate varies by at most {_spread(s['rows']):.0%} here (the largest max/min - 1 "
              "over the rows), on a machine shared with other jobs."]
    return "\n".join(lines) + "\n"


def _spread(rows):
    return max(max(r["images_per_second"].values()) / min(r["images_per_second"].values()) - 1 for r in rows)


if __name__ == "__main__":
    main()
