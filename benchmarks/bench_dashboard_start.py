"""How fast the dashboard shows its first plot, measured in Debian's chromium.

Three numbers per tree of the app:
  cold: seconds from launching ``streamlit run app.py`` to the first plot drawn on the Train tab of
        the first page (a canvas plot of funnelkit/viz/canvas_plots.js, or in trees before them, a
        Plotly chart); chromium is started beforehand and not counted;
  warm: seconds from opening a new page on the running server, once it has finished starting (its CPU is
        idle: the dashboard imports torch in the background after its first page), to the page's first
        plot, in a new browser profile (nothing cached: a student opening the link for the first time);
  tab:  the same in a new tab of a browser that has shown the page before (Streamlit's scripts come
        from the browser's cache: a lecturer opening another tab).

The moment of the first plot is read from the page's own clock: a script of the page looks for the plot
at every animation frame (just before each paint) and notes the time, which is compared with the time
the launch or the page began (both on this machine's clock). Waiting in Playwright alone would add its
polling delay, up to half a second.

Each tree has a cache folder of its own (``FUNNELKIT_CACHE``), empty at the start: its first launch is a
first start ever (the dashboard computes the shipped model's opening frame and keeps it there), the
later ones start as a lecturer's second ``make app`` does, drawing the kept frame before torch loads.
The cold number is the minimum over the later launches; the first start is reported beside it.

With ``--before DIR`` the same is measured for another checkout of the kit (for example
``git archive HEAD | tar -x -C DIR``), launch by launch in turn with this one, so both see the
same machine load; the minimum over ``--repeats`` launches is reported. With ``--floor`` two
Streamlit apps are measured too: one that shows only one small Plotly chart (what Streamlit, Plotly
and chromium take on this machine before any of the kit's work) and one that shows only one metric
(the same for a page with no plot at all: timed to the metric).

    python benchmarks/bench_dashboard_start.py --repeats 3 [--before /tmp/funnelkit-before]

Writes results/dashboard_start.json and .md.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
from bench_common import (CHROMIUM_ARGS, PLOT_DRAWN, dashboard_trees, plots_seen_script, save_results,
                          seconds_to_seen, seen_script)

FLOOR_APP = """import plotly.graph_objects as go
import streamlit as st

st.plotly_chart(go.Figure(go.Scatter(x=[1, 2, 3], y=[1, 3, 2])))
"""
TEXT_APP = """import streamlit as st

st.metric("iteration", "2,000")
"""
METRIC = "[data-testid='stMetric']"
SEEN = {PLOT_DRAWN: plots_seen_script(), METRIC: seen_script(METRIC)}  # the init script that times each
VIEWPORT = {"width": 1366, "height": 768}
FLOORS = {"floor: one Plotly chart": (FLOOR_APP, PLOT_DRAWN), "floor: one metric, no plot": (TEXT_APP, METRIC)}
TIMEOUT_S = 120


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(tree, port, cache):
    """``streamlit run`` of ``tree``'s app.py, importing ``tree``'s funnelkit, with ``cache`` as its cache folder."""
    env = dict(os.environ, PYTHONPATH=str(tree), FUNNELKIT_APP_DEVICE="cpu", FUNNELKIT_CACHE=str(cache))
    return subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(tree / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false"],
        cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def wait_healthy(url, start):
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return time.perf_counter() - start
        except OSError:
            if time.perf_counter() - start > TIMEOUT_S:
                raise RuntimeError(f"streamlit did not answer its health check in {TIMEOUT_S} s") from None
            time.sleep(0.05)


def first_seen(context, url, selector, began=None):
    """Seconds from ``began`` (a time.time(); by default the moment the page is opened) to the first frame
    of a new page of ``context`` at ``url`` that shows the element ``selector`` finds, by the page's clock."""
    page = context.new_page()
    try:
        page.add_init_script(SEEN[selector])
        began = time.time() if began is None else began
        page.goto(url, wait_until="commit")
        return seconds_to_seen(page, began, TIMEOUT_S)
    finally:
        page.close()


def settled(server, quiet_s=2.0, idle_share=0.05, within_s=60):
    """Wait until ``server`` (a Popen) has finished its start-up work: its CPU time grew by less than
    ``idle_share`` of one core in each quarter second of the last ``quiet_s`` (longer than the second the
    dashboard waits after its first page before it imports torch in the background). Pages opened before
    then would share the core with that import."""
    process = psutil.Process(server.pid)
    start = quiet_since = time.perf_counter()
    used = sum(process.cpu_times()[:2])
    while time.perf_counter() - quiet_since < quiet_s:
        if time.perf_counter() - start > within_s:
            raise RuntimeError(f"the server was still busy {within_s} s after its first page")
        time.sleep(0.25)
        now = sum(process.cpu_times()[:2])
        if now - used > idle_share * 0.25:
            quiet_since = time.perf_counter()
        used = now


def in_new_profile(browser, url, selector, began=None):
    """first_seen in a browser profile with nothing cached, as a student's browser opening the link for the
    first time."""
    profile = browser.new_context(viewport=VIEWPORT)
    try:
        return first_seen(profile, url, selector, began)
    finally:
        profile.close()


def measure(browser, tree, warm_pages, cache, selector, lecturer, prime):
    """(cold seconds, server-ready seconds, [warm seconds...], [tab seconds...]) for one launch of ``tree``'s
    app, timed to the first element ``selector`` finds: its first page, then ``warm_pages`` pages each in a
    new browser profile, and ``warm_pages`` new tabs of ``lecturer``, a profile that has shown the page before
    (with ``prime``, its first visit opens one page first, not timed)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    launched, start = time.time(), time.perf_counter()
    server = launch(tree, port, cache)
    try:
        ready = wait_healthy(url, start)
        cold = in_new_profile(browser, url, selector, began=launched)
        settled(server)
        warm = [in_new_profile(browser, url, selector) for _ in range(warm_pages)]
        if prime:
            first_seen(lecturer, url, selector)
        tab = [first_seen(lecturer, url, selector) for _ in range(warm_pages)]
        return cold, ready, warm, tab
    finally:
        server.terminate()
        server.wait(timeout=15)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="launches per tree (the minimum is reported)")
    parser.add_argument("--warm-pages", type=int, default=3, help="new pages opened on each warm server")
    parser.add_argument("--before", type=Path, help="another checkout measured in turn with this one")
    parser.add_argument("--floor", action="store_true",
                        help="also measure an app with one small Plotly chart and one with one metric")
    args = parser.parse_args()
    trees = dashboard_trees(args.before)
    selectors = {name: PLOT_DRAWN for name in trees}
    if args.floor:
        for name, (app, selector) in FLOORS.items():
            floor = Path(tempfile.mkdtemp(prefix="dashboard-floor-"))
            (floor / "app.py").write_text(app)
            trees[name], selectors[name] = floor, selector

    from playwright.sync_api import sync_playwright

    runs = {name: [] for name in trees}
    caches = {name: Path(tempfile.mkdtemp(prefix="dashboard-cache-")) for name in trees}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        lecturers = {name: browser.new_context(viewport=VIEWPORT) for name in trees}  # one browser each, kept
        try:
            for repeat in range(args.repeats):
                order = list(trees) if repeat % 2 == 0 else list(reversed(list(trees)))
                for name in order:
                    kept = any(caches[name].rglob("opening-*.npz"))
                    cold, ready, warm, tab = measure(browser, trees[name], args.warm_pages, caches[name],
                                                     selectors[name], lecturers[name], prime=repeat == 0)
                    runs[name].append({"cold_s": cold, "server_ready_s": ready, "warm_s": warm, "tab_s": tab,
                                       "frame_kept": kept})
                    print(f"{name}: cold {cold:.2f} s (server ready {ready:.2f} s), warm "
                          + ", ".join(f"{w:.2f}" for w in warm) + " s, tab " + ", ".join(f"{w:.2f}" for w in tab)
                          + " s", flush=True)
        finally:
            for lecturer in lecturers.values():
                lecturer.close()
            browser.close()

    load = os.getloadavg()
    def later(rs):  # the launches after the first: a kept opening frame where the tree keeps one
        return rs[1:] or rs

    summary = {
        name: {
            "first_start_s": rs[0]["cold_s"],
            "cold_min_s": min(r["cold_s"] for r in later(rs)),
            "cold_median_s": statistics.median(r["cold_s"] for r in later(rs)),
            "warm_min_s": min(w for r in rs for w in r["warm_s"]),
            "warm_median_s": statistics.median(w for r in rs for w in r["warm_s"]),
            "tab_min_s": min(w for r in rs for w in r["tab_s"]),
            "tab_median_s": statistics.median(w for r in rs for w in r["tab_s"]),
            "server_ready_min_s": min(r["server_ready_s"] for r in rs),
        }
        for name, rs in runs.items()
    }
    result = {"summary": summary, "runs": runs, "repeats": args.repeats, "warm_pages": args.warm_pages,
              "load_average_1_5_15": load, "cpus": os.cpu_count(), "viewport": "1366x768",
              "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    lines = ["# Dashboard start: launch to first plot, new page to first plot (chromium)", "",
             f"{args.repeats} launches per tree; on each warm server {args.warm_pages} new pages in new browser "
             f"profiles and {args.warm_pages} new tabs of a browser that has shown the page before; the trees "
             f"measured in turn. Times by the page's clock, to the first frame showing the plot. "
             f"Load average at the end: {load[0]:.1f} on {os.cpu_count()} CPUs.", "",
             "| tree | first start ever: launch → first plot | cold: launch → first plot (min / median) "
             "| warm: new page, new profile → first plot (min / median) | new tab → first plot (min / median) "
             "| server answers health (min) |",
             "|---|---|---|---|---|---|"]
    for name, s in summary.items():
        lines.append(f"| {name} | {s['first_start_s']:.2f} s | {s['cold_min_s']:.2f} / {s['cold_median_s']:.2f} s | "
                     f"{s['warm_min_s']:.2f} / {s['warm_median_s']:.2f} s | {s['tab_min_s']:.2f} / {s['tab_median_s']:.2f} s "
                     f"| {s['server_ready_min_s']:.2f} s |")
    lines += ["", "Command: `python benchmarks/bench_dashboard_start.py "
              + f"--repeats {args.repeats} --warm-pages {args.warm_pages}"
              + (" --before DIR" if args.before else "") + (" --floor`" if args.floor else "`"), ""]
    save_results("dashboard_start", result, "\n".join(lines))
    for cache in caches.values():
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
