"""Does the Train tab update in place while Play trains? Frames of the page, read in Debian's chromium.

A page at 1366x768 opens the dashboard (four circles, F-NSF, the shipped model), presses Play, lets
it train ``--warmup`` seconds, then reads every frame the browser paints for ``--seconds`` seconds
(a ``requestAnimationFrame`` loop in the page) and counts, for each of the three plots of the Train
tab (found by their keys: ``live_density``, ``live_samples``, ``live_loss``; in trees before the canvas
plots, ``density``, ``samples``, ``loss``):

  missing:  the plot is not drawn in that frame: no element with its key, or it is less than 50 px
            high, or (a canvas plot of funnelkit/viz/canvas_plots.js) its canvas has not been drawn
            or says it could not be, or (a Plotly chart, as trees before the canvas plots have) the
            element holds no Plotly ``.main-svg``, or Plotly has not drawn its data (the density: no
            heatmap ``image``; the samples: no marker ``path.point``; the loss: no line ``path.js-line``);
  greyed:   the plot is visibly faded: the product of the computed CSS ``opacity`` of the element
            and all its ancestors is below 0.95 (Streamlit fades an element that a running script
            has not sent again yet, its "stale" state, to opacity 0.33);
  stale:    Streamlit has marked the element's container ``data-stale="true"`` (it fades only
            after a delay, so this counts more frames than ``greyed``; reported, not a target).

and how often each plot is redrawn with new data, counted inside the page as it draws. A canvas plot
counts its own drawings (the canvas's ``data-drawn``): the count over the window is the redraws (each
while Play runs brings new data; the loss's new steps are also checked once per painted frame, by
its ``data-last-step``). For a Plotly chart, a listener on Plotly's ``plotly_afterplot`` event of each
plot (attached when the window starts, and again whenever Streamlit mounts a new plot element) counts
the drawings after which ``gd.data`` is a new array (Streamlit calls ``Plotly.react`` with a newly
parsed figure). Both count every redraw, however few frames the browser paints; the same test made
once per painted frame (the ``*_redraws_in_frames`` columns) cannot count more redraws than frames. Training speed is read from the
page's "iteration" metric at the start and end of the window: steps per second of wall time as a
viewer sees it, drawing included. The server runs torch on one thread (the app's default) at
``nice 10``; its CPU time over the window is read from ``/proc``, so that on a shared machine the
rates can also be given per CPU-second of the server: what one core of its own would give. With
``--pin`` the server is pinned to one CPU (``taskset``) and chromium to another.

    python benchmarks/bench_dashboard_frames.py --repeats 3 [--before DIR] [--room]

With ``--room`` the frames are those of a classroom room's viewer page (``?room=NAME``, plots keyed
``room_density``, ...): a presenter page opens the room and presses Play, then a viewer page opens the
room's link and its frames are read the same way (the training runs in the room's own process).

With ``--before DIR`` another checkout of the kit (``git archive HEAD | tar -x -C DIR``) is measured
too, window by window in turn with this one. Writes results/dashboard_frames.json and .md
(``--render`` writes the .md again from the .json).
"""

import argparse
import itertools
import json
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

from bench_common import CANVAS_DRAWN, CHROMIUM_ARGS, PLOTLY_DRAWN, RESULTS, dashboard_trees, save_results

CHARTS = ("density", "samples", "loss")
TIMEOUT_S = 120
GREYED_BELOW = 0.95  # effective opacity under which a plot counts as greyed


def result_name(args):
    """results/NAME.json and .md: one pair for each kind of page measured."""
    return "dashboard_frames" + ("_room" if args.room else "_reset" if args.reset else "")

#: Runs in the page: reads every painted frame for ``ms`` milliseconds and returns the counts.
FRAMES_JS = """async ({ms, charts, greyedBelow}) => {
    const drawn = {density: '.heatmaplayer image, .hm image', samples: '.scatterlayer path.point',
                   loss: '.scatterlayer path.js-line'};
    // the element of a plot: keyed live_density (canvas plots) or density (Plotly charts, in older trees)
    const boxOf = (name) => document.querySelector('.st-key-live_' + name) || document.querySelector('.st-key-room_' + name)
                            || document.querySelector('.st-key-' + name);
    // a canvas plot's canvas, inside the shadow root Streamlit mounts it in
    const canvasOf = (box) => {
        if (!box) return null;
        for (const el of box.querySelectorAll('*')) {
            const canvas = el.shadowRoot ? el.shadowRoot.querySelector('canvas') : null;
            if (canvas) return canvas;
        }
        return null;
    };
    const drawings = (name) => {
        const canvas = canvasOf(boxOf(name));
        return canvas ? Number(canvas.dataset.drawn || 0) : null;
    };
    const counts = {};
    const last = {};
    for (const c of charts) counts[c] = {missing: 0, greyed: 0, stale: 0, redraws: 0, lowest_opacity: 1,
                                         plotted: 0, afterplots: 0, plots_listened: 0};
    // Plotly's own event, after each drawing: counts the drawings that show new data (gd.data a new array).
    // Streamlit may also mount a new plot element for a new figure: a MutationObserver attaches the listener
    // to it at once, and its data, drawn already or not, counts when it is not the data last counted.
    const listened = {};
    const drawnData = {};
    let counting = false;
    const seen = (name, gd) => {
        if (counting && gd.data && gd.data !== drawnData[name]) counts[name].plotted += 1;
        if (gd.data) drawnData[name] = gd.data;
    };
    const listen = (name) => {
        const box = boxOf(name);
        const gd = box && box.querySelector('.js-plotly-plot');
        if (!gd || listened[name] === gd || typeof gd.on !== 'function') return;
        listened[name] = gd;
        if (counting) counts[name].plots_listened += 1;
        seen(name, gd);
        gd.on('plotly_afterplot', () => {
            if (listened[name] !== gd) return;
            if (counting) counts[name].afterplots += 1;
            seen(name, gd);
        });
    };
    const observer = new MutationObserver(() => { for (const name of charts) listen(name); });
    observer.observe(document.body, {childList: true, subtree: true});

    const iteration = () => {
        let found = null;
        for (const m of document.querySelectorAll("[data-testid='stMetric']")) {
            const v = m.querySelector("[data-testid='stMetricValue']");
            if (v && m.innerText.includes('iteration')) {
                found = Math.max(found ?? 0, parseInt(v.innerText.replace(/[^0-9]/g, ''), 10));
            }
        }
        return found;
    };
    const opacity = (el) => {
        let o = 1;
        for (let e = el; e && e !== document.documentElement; e = e.parentElement) {
            o *= parseFloat(getComputedStyle(e).opacity);
        }
        return o;
    };
    const look = (name) => {
        const c = counts[name];
        const box = boxOf(name);
        const gd = box && box.querySelector('.js-plotly-plot');
        const canvas = canvasOf(box);
        const ok = canvas ? canvas.dataset.drawn && !canvas.dataset.error && box.getBoundingClientRect().height >= 50
                          : gd && gd.querySelector('.main-svg') && gd.querySelector(drawn[name])
                            && box.getBoundingClientRect().height >= 50;
        if (!ok) c.missing += 1;
        if (box) {
            const o = opacity(box);
            c.lowest_opacity = Math.min(c.lowest_opacity, o);
            if (o < greyedBelow) c.greyed += 1;
            const container = box.closest("[data-testid='stElementContainer']") || box;
            if (container.getAttribute('data-stale') === 'true') c.stale += 1;
        }
        const data = canvas ? (name === 'loss' ? canvas.dataset.lastStep : canvas.dataset.drawn) : gd && gd.data;
        if (data && last[name] !== undefined && data !== last[name]) c.redraws += 1;
        if (data) last[name] = data;
    };
    const first = iteration();
    let frames = 0;
    for (const name of charts) listen(name);
    const drawnBefore = {};
    for (const name of charts) drawnBefore[name] = drawings(name);
    counting = true;
    const started = performance.now();
    await new Promise((done) => {
        const frame = (now) => {
            frames += 1;
            for (const name of charts) { listen(name); look(name); }
            if (now - started < ms) requestAnimationFrame(frame); else done();
        };
        requestAnimationFrame(frame);
    });
    const seconds = (performance.now() - started) / 1000;
    for (const name of charts) {  // a canvas plot: its own count of drawings over the window
        const now = drawings(name);
        if (now !== null && drawnBefore[name] !== null) counts[name].plotted = now - drawnBefore[name];
    }
    counting = false;  // the listeners stay on the plots, but count no more
    observer.disconnect();
    return {frames, seconds, first_iteration: first, last_iteration: iteration(), charts: counts};
}"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(tree, port, cpu=None):
    """``streamlit run`` of ``tree``'s app.py at nice 10 (on CPU ``cpu`` if given), importing ``tree``'s
    funnelkit. The process is Python itself (taskset and nice exec it): its id is the server's."""
    env = dict(os.environ, PYTHONPATH=str(tree), FUNNELKIT_APP_DEVICE="cpu", OMP_NUM_THREADS="1")
    prefix = ["taskset", "-c", str(cpu)] if cpu is not None and shutil.which("taskset") else []
    return subprocess.Popen(
        [*prefix, "nice", "-n", "10", sys.executable, "-m", "streamlit", "run", str(tree / "app.py"),
         "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def wait_healthy(url):
    start = time.perf_counter()
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return
        except OSError:
            if time.perf_counter() - start > TIMEOUT_S:
                raise RuntimeError(f"streamlit did not answer its health check in {TIMEOUT_S} s") from None
            time.sleep(0.1)


def iteration(page):
    """The page's iteration metric (the largest, while a rerun briefly shows an old one beside the new)."""
    values = page.locator("[data-testid='stMetric']").filter(has_text="iteration").locator(
        "[data-testid='stMetricValue']")
    values.first.wait_for(timeout=TIMEOUT_S * 1000)
    return max(int("".join(ch for ch in text if ch.isdigit()) or 0) for text in values.all_inner_texts())


def wait_until(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {timeout_s} s waiting for {what}")


def cpu_seconds(pid, children=False):
    """User plus system CPU seconds of process ``pid`` and its threads so far (Linux ``/proc``); with
    ``children``, those of its running child processes too (a room's training process)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    if children:
        for listing in Path(f"/proc/{pid}/task").glob("*/children"):
            total += sum(cpu_seconds(int(child), children=True) for child in listing.read_text().split())
    return total


def window(browser, url, pid, seconds, warmup, screenshot=None, reset=False):
    """Open a page (and with ``reset``, press Reset: a fresh model), press Play, wait ``warmup`` s, read
    ``seconds`` s of frames; returns the counts."""
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    try:
        page.goto(url)
        page.wait_for_selector(f".st-key-loss {PLOTLY_DRAWN}, .st-key-live_loss {CANVAS_DRAWN}", timeout=TIMEOUT_S * 1000)
        page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']",
                               timeout=TIMEOUT_S * 1000)
        if reset:
            page.get_by_role("button", name="Reset").click()
            wait_until(lambda: iteration(page) == 0, TIMEOUT_S, "the iteration to read 0 after Reset")
        start = iteration(page)
        page.get_by_role("button", name="Play").click()
        wait_until(lambda: iteration(page) > start, TIMEOUT_S, "training to start after Play")
        page.wait_for_timeout(int(warmup * 1000))
        cpu = cpu_seconds(pid)
        counts = page.evaluate(FRAMES_JS, {"ms": seconds * 1000, "charts": list(CHARTS),
                                           "greyedBelow": GREYED_BELOW})
        counts["server_cpu_s"] = cpu_seconds(pid) - cpu
        if screenshot is not None:
            page.screenshot(path=str(screenshot))
        errors = page.locator("[data-testid='stException']").count()
        page.get_by_role("button", name="Pause").click()
        page.wait_for_timeout(500)
        counts["exceptions_on_page"] = errors
        return counts
    finally:
        page.close()


ROOM_NUMBERS = itertools.count()  # a new room each window: whoever opens a room presents


def room_window(browser, url, pid, seconds, warmup, screenshot=None):
    """A presenter page opens a new room and presses Play; a viewer page then opens it and its frames are
    read for ``seconds`` s after ``warmup`` s. Returns the viewer's counts; the server's CPU time includes the
    room's training process (a child of the server)."""
    room = f"bench-frames-{next(ROOM_NUMBERS)}"
    presenter = browser.new_page(viewport={"width": 1366, "height": 768})
    viewer = browser.new_page(viewport={"width": 1366, "height": 768})
    try:
        presenter.goto(f"{url}/?room={room}")
        presenter.get_by_text("Are you the presenter? Open the room").click(timeout=TIMEOUT_S * 1000)
        presenter.get_by_role("button", name=f"Open room {room}").click(timeout=TIMEOUT_S * 1000)
        presenter.get_by_role("button", name="Play").click(timeout=TIMEOUT_S * 1000)
        viewer.goto(f"{url}/?room={room}")
        viewer.wait_for_selector(f".st-key-room_loss {PLOTLY_DRAWN}, .st-key-room_loss {CANVAS_DRAWN}",
                                 timeout=TIMEOUT_S * 1000)
        start = iteration(viewer)
        wait_until(lambda: iteration(viewer) > start, TIMEOUT_S, "the room to train after Play")
        viewer.wait_for_timeout(int(warmup * 1000))
        cpu = cpu_seconds(pid, children=True)
        counts = viewer.evaluate(FRAMES_JS, {"ms": seconds * 1000, "charts": list(CHARTS),
                                             "greyedBelow": GREYED_BELOW})
        counts["server_cpu_s"] = cpu_seconds(pid, children=True) - cpu
        if screenshot is not None:
            viewer.screenshot(path=str(screenshot))
        counts["exceptions_on_page"] = viewer.locator("[data-testid='stException']").count()
        presenter.get_by_role("button", name="Pause").click()
        presenter.wait_for_timeout(500)
        return counts
    finally:
        viewer.close()
        presenter.close()


def summarise(counts):
    frames = max(counts["frames"], 1)
    row = {"frames": counts["frames"], "seconds": counts["seconds"], "fps": counts["frames"] / counts["seconds"]}
    for name, c in counts["charts"].items():
        row[f"{name}_missing_pct"] = 100 * c["missing"] / frames
        row[f"{name}_greyed_pct"] = 100 * c["greyed"] / frames
        row[f"{name}_stale_pct"] = 100 * c["stale"] / frames
        row[f"{name}_redraws_per_s"] = c["plotted"] / counts["seconds"]  # counted by Plotly's event
        row[f"{name}_redraws_in_frames_per_s"] = c["redraws"] / counts["seconds"]  # seen in the painted frames
        row[f"{name}_plots_listened"] = c["plots_listened"]
        row[f"{name}_lowest_opacity"] = c["lowest_opacity"]
    if counts["first_iteration"] is not None and counts["last_iteration"] is not None:
        steps = counts["last_iteration"] - counts["first_iteration"]
        row["steps_per_s"] = steps / counts["seconds"]
        row["steps_per_server_cpu_s"] = steps / max(counts["server_cpu_s"], 1e-9)
    row["server_cpu_share"] = counts["server_cpu_s"] / counts["seconds"]
    row["loss_redraws_per_server_cpu_s"] = counts["charts"]["loss"]["plotted"] / max(counts["server_cpu_s"], 1e-9)
    row["exceptions_on_page"] = counts["exceptions_on_page"]
    return row


def chromium_on(cpu):
    """A chromium executable pinned to CPU ``cpu`` (a wrapper script), or chromium itself without taskset."""
    if not shutil.which("taskset"):
        return "/usr/bin/chromium"
    wrapper = Path(tempfile.mkdtemp(prefix="chromium-pinned-")) / "chromium"
    wrapper.write_text(f'#!/bin/sh\nexec taskset -c {cpu} /usr/bin/chromium "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="windows per tree")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each window of frames")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of Play before each window")
    parser.add_argument("--before", type=Path, help="another checkout measured in turn with this one")
    parser.add_argument("--pin", type=int, metavar="CPU", help="pin the server to this CPU, chromium to another")
    parser.add_argument("--screenshots", type=Path, help="a folder for a screenshot at the end of each window")
    parser.add_argument("--render", action="store_true", help="only write the .md again from the saved .json")
    parser.add_argument("--room", action="store_true", help="read a room viewer's page instead of a session's own")
    parser.add_argument("--reset", action="store_true", help="press Reset before Play: a fresh model, whose "
                        "pictures change more than the shipped model's")
    args = parser.parse_args()
    if args.render:
        name = result_name(args)
        (RESULTS / f"{name}.md").write_text(markdown(json.loads((RESULTS / f"{name}.json").read_text())))
        return
    trees = dashboard_trees(args.before)

    from playwright.sync_api import sync_playwright

    rows = {name: [] for name in trees}
    servers = {}
    try:
        for name, tree in trees.items():
            port = free_port()
            servers[name] = (launch(tree, port, args.pin), f"http://127.0.0.1:{port}")
        for _, url in servers.values():
            wait_healthy(url)
        with sync_playwright() as p:
            chromium = "/usr/bin/chromium" if args.pin is None else chromium_on(1 if args.pin == 0 else 0)
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            try:
                for repeat in range(args.repeats):
                    order = list(trees) if repeat % 2 == 0 else list(reversed(list(trees)))
                    for name in order:
                        shot = None
                        if args.screenshots is not None:
                            args.screenshots.mkdir(parents=True, exist_ok=True)
                            shot = args.screenshots / f"frames-{name}-{repeat}.png"
                        process, url = servers[name]
                        if args.room:
                            counts = room_window(browser, url, process.pid, args.seconds, args.warmup, shot)
                        else:
                            counts = window(browser, url, process.pid, args.seconds, args.warmup, shot, args.reset)
                        row = summarise(counts)
                        row["load_average_1"] = os.getloadavg()[0]
                        rows[name].append(row)
                        print(f"{name} #{repeat}: " + ", ".join(
                            f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
            finally:
                browser.close()
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=15)

    summary = {}
    for name, rs in rows.items():
        summary[name] = {key: {"min": min(r[key] for r in rs), "median": statistics.median(r[key] for r in rs),
                               "max": max(r[key] for r in rs)}
                         for key in rs[0] if isinstance(rs[0][key], (int, float))}
    command = (f"python benchmarks/bench_dashboard_frames.py --repeats {args.repeats} --seconds {args.seconds:g}"
               + (f" --pin {args.pin}" if args.pin is not None else "") + (" --before DIR" if args.before else "")
               + (" --room" if args.room else "") + (" --reset" if args.reset else ""))
    result = {"summary": summary, "windows": rows, "seconds": args.seconds, "warmup": args.warmup,
              "repeats": args.repeats, "greyed_below_opacity": GREYED_BELOW, "viewport": "1366x768",
              "server": ("nice 10, torch 1 thread" + (f", taskset -c {args.pin}" if args.pin is not None else "")),
              "load_average_1_5_15": os.getloadavg(), "cpus": os.cpu_count(), "command": command,
              "page": ("a room viewer's page" if args.room else "a session's own Train tab")
              + (", after Reset" if args.reset and not args.room else ""),
              "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    save_results(result_name(args), result, markdown(result))


def markdown(result):
    """The results as a Markdown page (``--render`` writes it again from results/dashboard_frames.json)."""
    load = result["load_average_1_5_15"]
    page = result.get("page", "a session's own Train tab")
    lines = [f"# Dashboard frames while Play trains: {page} (chromium, 1366x768)", "",
             f"{result['repeats']} windows of {result['seconds']:g} s per tree (after {result['warmup']:g} s of Play), "
             f"the trees in turn; server: {result['server']}. Load average at the end: {load[0]:.1f} on "
             f"{result['cpus']} CPUs (other work shares the machine). Min–max over the windows:", "",
             "| tree | frames/s | plots missing (each) | any plot greyed | any plot stale-marked | loss redraws/s | "
             "loss redraws/s seen in frames | density redraws/s | training steps/s | server CPU share | "
             "steps per server CPU-s | loss redraws per server CPU-s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def span(s, key, unit="", digits=1):
        return f"{s[key]['min']:.{digits}f}–{s[key]['max']:.{digits}f}{unit}"

    def worst(s, what):
        return (f"{max(s[f'{c}_{what}_pct']['min'] for c in CHARTS):.1f}–"
                f"{max(s[f'{c}_{what}_pct']['max'] for c in CHARTS):.1f} %")

    for name, s in result["summary"].items():
        lines.append(
            f"| {name} | {span(s, 'fps', digits=0)} | {worst(s, 'missing')} | {worst(s, 'greyed')} | "
            f"{worst(s, 'stale')} | {span(s, 'loss_redraws_per_s')} | "
            f"{span(s, 'loss_redraws_in_frames_per_s') if 'loss_redraws_in_frames_per_s' in s else '–'} | "
            f"{span(s, 'density_redraws_per_s')} | "
            f"{span(s, 'steps_per_s')} | {span(s, 'server_cpu_share', digits=2)} | "
            f"{span(s, 'steps_per_server_cpu_s')} | {span(s, 'loss_redraws_per_server_cpu_s')} |")
    lines += ["", "Plots missing: the largest share of frames, over the three plots, in which the plot's element or "
              "its drawing is absent (a canvas plot: its canvas not drawn, or drawn with an error; a Plotly chart: its "
              "svg or its drawn data), or it is under 50 px high. Any plot greyed: the same for frames "
              "where the product of CSS opacity over the plot's element and its ancestors is below "
              f"{result['greyed_below_opacity']} (Streamlit's stale fade); stale-marked: frames where Streamlit has "
              "marked the plot's container `data-stale` (it fades only after 0.5 s). Redraws: a canvas plot's own "
              "count of its drawings (`data-drawn`), or, for a Plotly chart, drawings of new data (`gd.data` replaced) "
              "counted by a `plotly_afterplot` listener on each plot; seen in frames: a new drawing (a canvas loss "
              "plot: a new last step) seen once per painted frame (at most one per frame). Steps/s: the page's iteration counter over the window. Server CPU share: the server's CPU "
              "seconds (all its threads) per second of the window; per server CPU-s: the rate per CPU-second the "
              "server got, what one core of its own would give.", "",
              f"Command: `{result.get('command', 'python benchmarks/bench_dashboard_frames.py')}`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
