"""What the benchmark scripts share: side-by-side step timing (the steps of the models compared
are interleaved in blocks, the order reversed every other block, so all see the same machine
load; medians resist the shared machine's noise) and writing results/NAME.json and .md.
Imported by the scripts in this folder."""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import funnelkit as fk


def timing_trainer(model, sample_batch, batch_size, lr=1e-4):
    """A Trainer for timing steps: a constant learning rate, more steps than any benchmark takes."""
    return fk.Trainer(model, sample_batch, fk.TrainConfig(steps=10_000, batch_size=batch_size, schedule="constant",
                                                          lr=lr))


def median_step_times(trainers, blocks=6, steps_per_block=3, warmup=2):
    """Median seconds per ``train_step`` of each of ``trainers`` (a dict), after ``warmup`` steps each;
    ``blocks`` of ``steps_per_block`` steps per trainer, the order reversed every other block."""
    for trainer in trainers.values():
        for _ in range(warmup):
            trainer.train_step()
    times = {name: [] for name in trainers}
    for block in range(blocks):
        order = list(trainers) if block % 2 == 0 else list(reversed(list(trainers)))
        for name in order:
            for _ in range(steps_per_block):
                start = time.perf_counter()
                trainers[name].train_step()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parents[1]


def dashboard_trees(before=None):
    """``{"after": this checkout}``, with ``{"before": before}`` first when another checkout is given
    (the dashboard benchmarks measure both in turn, side by side in one run)."""
    if before is None:
        return {"after": REPO}
    if not (Path(before) / "app.py").is_file():
        raise FileNotFoundError(f"--before must be a checkout holding app.py; {Path(before) / 'app.py'} is absent")
    return {"before": Path(before).resolve(), "after": REPO}


def save_results(name, result, markdown):
    """Write ``results/<name>.json`` and ``results/<name>.md`` and print the Markdown."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    print(markdown)


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PLOTLY_DRAWN = "[data-testid='stPlotlyChart'] .js-plotly-plot .main-svg"  # a Plotly chart (trees before the canvas plots)
CANVAS_DRAWN = "canvas[data-drawn]"  # a canvas plot of funnelkit/viz/canvas_plots.js, in its component's shadow root
PLOT_DRAWN = f"{PLOTLY_DRAWN}, [data-testid='stElementContainer'] {CANVAS_DRAWN}"  # either (Playwright looks in shadow roots)
_SEEN_SCRIPT = """(() => {
  const light = LIGHT, shadow = SHADOW, count = COUNT;
  const found = () => document.querySelectorAll(light).length + (shadow === null ? 0 : [...document.querySelectorAll('*')]
    .reduce((n, el) => n + (el.shadowRoot ? el.shadowRoot.querySelectorAll(shadow).length : 0), 0));
  const look = () => { if (found() >= count) window.funnelkitFirstSeen = performance.now(); else requestAnimationFrame(look); };
  requestAnimationFrame(look);
})();"""


def seen_script(light, shadow=None, count=1):
    """A script for Playwright's ``add_init_script``: at every animation frame (just before each paint) it counts
    the elements ``light`` finds in the page and ``shadow`` (if given) finds in components' shadow roots, and
    keeps in ``window.funnelkitFirstSeen`` the page's time (ms since its navigation began) of the first frame
    with at least ``count``. Timed by the page's own clock: waiting in Playwright would add its polling delay,
    up to half a second."""
    return (_SEEN_SCRIPT.replace("LIGHT", json.dumps(light)).replace("SHADOW", json.dumps(shadow))
            .replace("COUNT", str(int(count))))


def plots_seen_script(count=1):
    """seen_script for ``count`` drawn plots, canvas or Plotly."""
    return seen_script(PLOTLY_DRAWN, CANVAS_DRAWN, count)


def seconds_to_seen(page, began, timeout_s):
    """Seconds from ``began`` (a time.time() of this machine) to the frame seen_script noted in ``page``."""
    page.wait_for_function("() => window.funnelkitFirstSeen !== undefined", timeout=timeout_s * 1000)
    return page.evaluate("() => performance.timeOrigin + window.funnelkitFirstSeen") / 1000 - began


@contextmanager
def dashboard_in_chromium(env=None, start_within_s=90):
    """A Streamlit server for ``app.py`` on a free local port and Debian's chromium (Playwright).

    Yields ``(url, browser, server_ready_s)``: the seconds the server took to answer its health
    check. The server is always terminated."""
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false"],
        cwd=tempfile.gettempdir(), env=dict(os.environ, **(env or {})), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if time.perf_counter() - start > start_within_s:
                    raise RuntimeError(f"streamlit did not start in {start_within_s} s") from None
                time.sleep(0.2)
        server_ready = time.perf_counter() - start
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
            try:
                yield url, browser, server_ready
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=15)
