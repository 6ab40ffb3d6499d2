"""A classroom room under load: 30 viewers of one training, and 5 independent sessions training at once.

The server is ``streamlit run app.py`` (default picture sizes: a 100x100 density grid, 1,000
samples) on a free local port. The pages are *light pages*: Python clients of Streamlit's own
websocket protocol, many in one asyncio loop (:class:`LightPage`). A light page does what the
browser's Streamlit client does on the wire: it asks for a script run with the page's query string,
receives every ForwardMsg (the deltas with the whole Plotly figures), keeps the large ones and
tells the server which it holds, as the browser's message cache does (the server then sends a
reference instead of a figure it already sent, but still builds it to know), answers each
``auto_rerun`` (``st.fragment(run_every=...)``) with a fragment rerun on the same timer as the
browser, and clicks buttons by sending their trigger. It does not lay out, parse the Plotly JSON
or draw: what the server does for a page is exercised, what the browser does is not. With
``--chromium`` one real chromium page opens the room while the light pages run, and its time to
its first frame with the three plots drawn is measured too (by the page's clock).

Room phase: a presenter page opens room ``bench`` (the "Open room" button) and presses Play; then
``--viewers`` light pages watch it for ``--seconds``. Measured per viewer: redraws per second (the
"iteration" metric received, one per fragment run) and new iterations per second (distinct values
of it); the time a new page takes to receive its three charts while the viewers watch; the
server's resident memory (RSS, /proc) before and after the viewers joined.

Sessions phase (``--sessions``, default 5): that many light pages on the ordinary page (no room),
each pressing Play on its own model; measured: each page's redraws per second and iterations per
second, and a new page's time to its charts meanwhile.

    python benchmarks/bench_room.py [--viewers 30] [--seconds 30] [--sessions 5] [--chromium]

Writes results/room.json and .md.
"""

import argparse
import asyncio
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import websockets
from bench_common import (CHROMIUM_ARGS, REPO, RESULTS, dashboard_trees, plots_seen_script, save_results,
                          seconds_to_seen)
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

ROOM = "bench"
CACHED_MESSAGES = 64  # large messages a light page keeps (the browser keeps those of recent runs)
BASE_S = 8.0  # seconds the server is measured with the room training and only its presenter watching
CHARTS = 3  # density, samples, loss: a page has rendered when it has received all three


class LightPage:
    """One page of the dashboard as Streamlit's websocket protocol sees it (no browser).

    Records when each "iteration" metric arrived and its value, when the page's charts arrived, the
    buttons it was sent (label -> widget id) and the bytes it received.
    """

    def __init__(self, url, query=""):
        self.url, self.query = url, query
        self.page_hash = ""
        self.iterations = []  # (seconds since start, value) for each redraw of the metric
        self.charts = 0
        self.rendered_s = None  # seconds from connecting to the third chart
        self.buttons = {}
        self.received_bytes = 0
        self.run_ends = []  # (seconds since start, ScriptFinishedStatus name) for each script or fragment run
        self.finished = asyncio.Event()
        self.errors = []
        self._timers = {}
        self._cache = collections.OrderedDict()  # hash -> ForwardMsg: the large messages received
        self._socket = None
        self._started = None
        self._reader = None

    async def open(self):
        self._started = time.perf_counter()
        host = urllib.parse.urlparse(self.url).netloc
        self._socket = await websockets.connect(f"ws://{host}/_stcore/stream", subprotocols=["streamlit"],
                                                origin=self.url, max_size=None, ping_interval=None,
                                                open_timeout=120)
        self._reader = asyncio.create_task(self._read())
        await self._send()

    async def close(self):
        for timer in self._timers.values():
            timer.cancel()
        if self._reader:
            self._reader.cancel()
        if self._socket:
            await self._socket.close()

    async def click(self, label, timeout=60):
        """Press the button ``label`` (the browser sends its trigger with a full rerun); waits for the run."""
        deadline = time.perf_counter() + timeout
        while label not in self.buttons:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"no button {label!r} on the page {self.query!r}; it has {sorted(self.buttons)}")
            await asyncio.sleep(0.1)
        self.finished.clear()
        await self._send(widgets=[WidgetState(id=self.buttons[label], trigger_value=True)])
        await asyncio.wait_for(self.finished.wait(), timeout)

    async def _send(self, fragment_id="", auto=False, widgets=()):
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query
        state.page_script_hash = self.page_hash
        state.fragment_id = fragment_id
        state.is_auto_rerun = auto
        state.widget_states.widgets.extend(widgets)
        state.cached_message_hashes.extend(self._cache)
        await self._socket.send(msg.SerializeToString())

    async def _every(self, fragment_id, seconds):
        """The browser's timer for ``st.fragment(run_every=seconds)``."""
        try:
            while True:
                await asyncio.sleep(seconds)
                await self._send(fragment_id=fragment_id, auto=True)
        except (asyncio.CancelledError, websockets.ConnectionClosed):
            pass

    async def _read(self):
        try:
            async for data in self._socket:
                self.received_bytes += len(data)
                msg = ForwardMsg()
                msg.ParseFromString(data)
                if msg.WhichOneof("type") == "ref_hash":  # a message sent before, by its hash
                    cached = self._cache.get(msg.ref_hash)
                    if cached is None:
                        self.errors.append(f"a reference to a message this page does not hold: {msg.ref_hash}")
                        continue
                    msg = cached
                elif msg.metadata.cacheable and msg.hash:
                    self._cache[msg.hash] = msg
                    while len(self._cache) > CACHED_MESSAGES:
                        self._cache.popitem(last=False)
                self._handle(msg)
        except (asyncio.CancelledError, websockets.ConnectionClosed):
            pass
        except Exception as error:  # noqa: BLE001 - recorded and reported, not hidden
            self.errors.append(repr(error))

    def _handle(self, msg):
        kind = msg.WhichOneof("type")
        now = time.perf_counter() - self._started
        if kind == "new_session":
            self.page_hash = msg.new_session.page_script_hash or msg.new_session.main_script_hash
        elif kind == "stop_auto_rerun":  # fragments that are gone (a full run sets the others again)
            for fragment in msg.stop_auto_rerun.fragment_ids:
                timer = self._timers.pop(fragment, None)
                if timer is not None:
                    timer.cancel()
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
        elif kind == "auto_rerun":
            fragment, seconds = msg.auto_rerun.fragment_id, msg.auto_rerun.interval
            if fragment in self._timers:
                self._timers[fragment].cancel()
            self._timers[fragment] = asyncio.create_task(self._every(fragment, seconds))
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            element = msg.delta.new_element
            which = element.WhichOneof("type")
            if which == "metric" and element.metric.label == "iteration":
                self.iterations.append((now, int(element.metric.body.replace(",", ""))))
            elif which in ("plotly_chart", "bidi_component"):  # Plotly charts, or (since) canvas plots
                self.charts += 1
                if self.charts == CHARTS and self.rendered_s is None:
                    self.rendered_s = now
            elif which == "button":
                self.buttons[element.button.label] = element.button.id
        elif kind == "script_finished":
            self.run_ends.append((now, ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)))
            self.finished.set()

    def rates(self, start, end):
        """(redraws per second, new iterations per second) between ``start`` and ``end`` (page seconds)."""
        inside = [(t, i) for t, i in self.iterations if start <= t <= end]
        span = end - start
        if not inside:
            return 0.0, 0.0
        return len(inside) / span, (inside[-1][1] - inside[0][1]) / span

    def longest_gap(self, start, end):
        """The longest time without a redraw between ``start`` and ``end``."""
        times = [start] + [t for t, _ in self.iterations if start <= t <= end] + [end]
        return max(b - a for a, b in zip(times, times[1:]))


class Server:
    """``streamlit run app.py`` of ``tree`` (importing that tree's funnelkit) on a free port, pinned to CPU
    ``cpu`` when given (its children, the rooms' training processes, inherit it); its resident memory and
    CPU time read from /proc, its own and its children's apart."""

    def __init__(self, env=None, start_within_s=120, tree=REPO, cpu=None):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", prefix="bench_room_", delete=False)
        prefix = ["taskset", "-c", str(cpu)] if cpu is not None and shutil.which("taskset") else []
        self.process = subprocess.Popen(
            [*prefix, sys.executable, "-m", "streamlit", "run", str(tree / "app.py"), "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"],
            cwd=tree, env=dict(os.environ, PYTHONPATH=str(tree), **(env or {})), stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + start_within_s
        while True:
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"streamlit did not start; its log: {self.log.name}")
            time.sleep(0.3)
        self.ps = psutil.Process(self.process.pid)
        self._children = {}  # pid -> psutil.Process: CPU time of children that ended is not lost from the sum

    def rss_mb(self):
        return self.ps.memory_info().rss / 2**20

    def children_rss_mb(self):
        """Resident memory of the server's children (the rooms' training processes)."""
        total = 0
        for child in self.ps.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20

    def cpu_s(self):
        times = self.ps.cpu_times()
        return times.user + times.system

    def children_cpu_s(self):
        """CPU seconds of the server's live children (the rooms' training processes)."""
        total = 0.0
        for child in self.ps.children(recursive=True):
            try:
                times = child.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        return total

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def summary(values):
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


async def new_page_render(url, query, timeout=120):
    """Seconds a new light page takes from connecting to its three charts."""
    page = LightPage(url, query)
    await page.open()
    deadline = time.perf_counter() + timeout
    while page.rendered_s is None and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
    await page.close()
    return page.rendered_s


async def watch(pages, seconds, server, children=None):
    """Let ``pages`` run for ``seconds``; returns the server's RSS samples (MB) and CPU seconds used (its own;
    its children's go into ``children["cpu_s"]`` when a dict is given)."""
    cpu_before, samples = server.cpu_s(), []
    children_before = server.children_cpu_s()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        samples.append(server.rss_mb())
        await asyncio.sleep(1.0)
    if children is not None:
        children["cpu_s"] = server.children_cpu_s() - children_before
    return samples, server.cpu_s() - cpu_before


def page_rates(pages, window_start, window_end):
    """Per page: redraws/s, iterations/s and the longest gap, over the wall-clock window."""
    out = []
    for page in pages:
        start, end = window_start - page._started, window_end - page._started
        redraws, iterations = page.rates(start, end)
        ends = collections.Counter(status for t, status in page.run_ends if start <= t <= end)
        out.append({"redraws_per_s": redraws, "iterations_per_s": iterations,
                    "longest_gap_s": page.longest_gap(start, end), "errors": page.errors, "run_ends": ends})
    return out


async def room_phase(server, viewers, seconds, stagger_s, new_pages):
    presenter = LightPage(server.url, f"room={ROOM}")
    await presenter.open()
    await asyncio.wait_for(presenter.finished.wait(), 120)
    await presenter.click(f"Open room {ROOM}")
    if "token=" not in presenter.query:
        raise RuntimeError(f"opening the room gave no presenter link (query {presenter.query!r})")
    await presenter.click("Play")
    await asyncio.sleep(8)  # warm: the first figures built, the training thread going
    rss_before = statistics.median([server.rss_mb() for _ in range(3)])
    base_children = {}
    _, base_cpu = await watch([presenter], BASE_S, server, base_children)  # the room training, its presenter watching
    base_window = page_rates([presenter], time.perf_counter() - BASE_S, time.perf_counter())[0]
    pages = []
    join_start = time.perf_counter()
    for _ in range(viewers):
        page = LightPage(server.url, f"room={ROOM}")
        await page.open()
        pages.append(page)
        await asyncio.sleep(stagger_s)
    await asyncio.sleep(5)  # every viewer past its first render
    window_start = time.perf_counter()
    children = {}
    rss, cpu = await watch(pages, seconds, server, children)
    window_end = time.perf_counter()
    window_rates = page_rates([presenter], window_start, window_end)[0]
    children_rss = server.children_rss_mb()
    renders = [await new_page_render(server.url, f"room={ROOM}") for _ in range(new_pages)]
    rss_after = statistics.median(rss[-5:])
    rates = page_rates(pages, window_start, window_end)
    redraws = sum(r["redraws_per_s"] for r in rates) * seconds
    first_renders = [p.rendered_s for p in pages]
    bytes_per_s = statistics.median([p.received_bytes for p in pages]) / (window_end - join_start)
    for page in pages:
        await page.close()
    await presenter.click("Pause")
    await presenter.close()
    return {
        "viewers": viewers, "seconds": seconds,
        "redraws_per_s": summary([r["redraws_per_s"] for r in rates]),
        "iterations_per_s": summary([r["iterations_per_s"] for r in rates]),
        "longest_gap_s": summary([r["longest_gap_s"] for r in rates]),
        "viewers_below_2_per_s": sum(r["redraws_per_s"] < 2 for r in rates),
        "first_render_while_joining_s": summary([r for r in first_renders if r is not None]),
        "viewers_never_rendered": sum(r is None for r in first_renders),
        "new_page_render_s": renders,
        "rss_before_mb": rss_before, "rss_after_mb": rss_after, "rss_peak_mb": max(rss),
        "rss_per_viewer_mb": (rss_after - rss_before) / viewers,
        "server_cpu_s_per_s": cpu / seconds,
        "server_cpu_s_per_s_presenter_only": base_cpu / BASE_S,
        "training_iterations_per_s_presenter_only": base_window["iterations_per_s"],
        "training_iterations_per_s_with_viewers": window_rates["iterations_per_s"],
        "children_cpu_s_per_s": children["cpu_s"] / seconds,
        "children_cpu_s_per_s_presenter_only": base_children["cpu_s"] / BASE_S,
        "children_rss_mb": children_rss,
        "cpu_ms_per_viewer_redraw": 1000 * (cpu / seconds - base_cpu / BASE_S) * seconds / max(redraws, 1),
        "received_kb_per_s_per_viewer": bytes_per_s / 1024,
        "page_errors": sorted({e for r in rates for e in r["errors"]}),
        "viewer_run_ends": dict(sum((r["run_ends"] for r in rates), collections.Counter())),
    }


async def sessions_phase(server, sessions, seconds, new_pages):
    pages = []
    for _ in range(sessions):
        page = LightPage(server.url, "")
        await page.open()
        await asyncio.wait_for(page.finished.wait(), 120)
        pages.append(page)
    for page in pages:
        await page.click("Play")
    await asyncio.sleep(5)
    window_start = time.perf_counter()
    _, cpu = await watch(pages, seconds, server)
    window_end = time.perf_counter()
    renders = [await new_page_render(server.url, "") for _ in range(new_pages)]
    rates = page_rates(pages, window_start, window_end)
    redraws = sum(r["redraws_per_s"] for r in rates) * seconds
    for page in pages:
        await page.close()
    return {
        "sessions": sessions, "seconds": seconds,
        "redraws_per_s": summary([r["redraws_per_s"] for r in rates]),
        "iterations_per_s": summary([r["iterations_per_s"] for r in rates]),
        "longest_gap_s": summary([r["longest_gap_s"] for r in rates]),
        "sessions_below_1_per_s": sum(r["redraws_per_s"] < 1 for r in rates),
        "cpu_ms_per_redraw": 1000 * cpu / max(redraws, 1),
        "new_page_render_s": renders,
        "server_cpu_s_per_s": cpu / seconds,
        "page_errors": sorted({e for r in rates for e in r["errors"]}),
        "page_run_ends": dict(sum((r["run_ends"] for r in rates), collections.Counter())),
    }


def chromium_render(url, query, timeout_s=120):
    """Seconds a chromium page (1366x768) takes from navigation to the first frame with its three plots drawn,
    by the page's clock (None: not within ``timeout_s``)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.add_init_script(plots_seen_script(count=3))
            began = time.time()
            try:
                page.goto(f"{url}/?{query}", wait_until="commit", timeout=timeout_s * 1000)
                return seconds_to_seen(page, began, timeout_s)
            except PlaywrightTimeout:
                return None
        finally:
            browser.close()


async def room_with_chromium(server, viewers, seconds, stagger_s, new_pages):
    """The room phase, with one chromium page opening the room while the viewers watch."""
    task = asyncio.create_task(room_phase(server, viewers, seconds, stagger_s, new_pages))
    await asyncio.sleep(8 + viewers * stagger_s + 5 + seconds / 2)  # in the middle of the measured window
    chromium = await asyncio.to_thread(chromium_render, server.url, f"room={ROOM}")
    result = await task
    result["chromium_new_page_render_s"] = chromium
    return result


def stopped_share(ends):
    """The share of runs (script or fragment) that Streamlit stopped for a rerun, as text."""
    if not ends:
        return "not counted"
    total = sum(ends.values())
    return f"{ends.get('FINISHED_EARLY_FOR_RERUN', 0)} of {total} ({100 * ends.get('FINISHED_EARLY_FOR_RERUN', 0) / total:.0f} %)"


def markdown(result):
    room, sessions = result["room"], result.get("sessions")
    pin = result.get("pin")
    where = (f"the server and its children pinned to CPU {pin} (taskset), the light pages to the other"
             if pin is not None else "nothing pinned")
    lines = [
        "# A classroom room under load, and independent sessions training at once",
        "",
        f"Server: `streamlit run app.py` (density grid 100x100, 1,000 samples), CPU. Machine: {result['cpus']} CPUs "
        f"shared with other work; load average {result['load_before'][0]:.1f} before, "
        f"{result['load_after'][0]:.1f} after; the server ran at nice {result['server_nice']}; {where}.",
        "",
    ]
    trees = result.get("trees", {})
    if len(trees) > 1:
        lines += [
            f"## {room['viewers']} viewers, the trees in turn (before: the other checkout, after: this one)",
            "",
            "| tree | redraws per viewer per s (min / median) | viewers below 2/s | longest gap (max, s) | new page (max, s) "
            "| server CPU-s/s (viewers / presenter only) | its children's CPU-s/s | ms of server CPU per viewer redraw "
            "| room iterations/s (presenter only / with viewers) | RSS MB per viewer | viewer runs stopped for a rerun |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in trees.items():
            new = [x for x in r["new_page_render_s"] if x is not None]
            lines.append(
                f"| {name} | {r['redraws_per_s']['min']:.2f} / {r['redraws_per_s']['median']:.2f} | "
                f"{r['viewers_below_2_per_s']} of {r['viewers']} | {r['longest_gap_s']['max']:.2f} | "
                f"{f'{max(new):.2f}' if len(new) == len(r['new_page_render_s']) else 'not within 120 s'} | {r['server_cpu_s_per_s']:.2f} / {r['server_cpu_s_per_s_presenter_only']:.2f} | "
                f"{r.get('children_cpu_s_per_s', 0.0):.2f} | {r['cpu_ms_per_viewer_redraw']:.1f} | "
                f"{r['training_iterations_per_s_presenter_only']:.1f} / "
                f"{r.get('training_iterations_per_s_with_viewers', float('nan')):.1f} | "
                f"{r['rss_per_viewer_mb']:.2f} | {stopped_share(r.get('viewer_run_ends'))} |")
        lines += ["", "The sections below are this checkout's (after).", ""]
    lines += [
        "Pages are light pages (`LightPage` in the script): Python clients of Streamlit's websocket protocol. "
        "Each asks for the page, receives every message (the whole figures or plots; like the browser it keeps the "
        "large ones and names them in its requests, so the server may send a reference instead), and answers the "
        "fragment timer (`st.fragment(run_every=...)`) as the browser does. They do not lay out or draw: the "
        "server's work per page is measured, the browser's is not. All run in one asyncio process beside the "
        "server, on the same 2 CPUs.",
        "",
        f"## {room['viewers']} viewers of one room (presenter pressed Play), {room['seconds']} s",
        "",
        "| measure | min | median | max | goal |",
        "|---|---|---|---|---|",
        f"| redraws per viewer per second | {room['redraws_per_s']['min']:.2f} | {room['redraws_per_s']['median']:.2f} "
        f"| {room['redraws_per_s']['max']:.2f} | ≥ 2 |",
        f"| new iterations seen per viewer per second | {room['iterations_per_s']['min']:.1f} | "
        f"{room['iterations_per_s']['median']:.1f} | {room['iterations_per_s']['max']:.1f} | |",
        f"| longest gap between two redraws (s) | {room['longest_gap_s']['min']:.2f} | "
        f"{room['longest_gap_s']['median']:.2f} | {room['longest_gap_s']['max']:.2f} | |",
        f"| first render of a joining viewer (s) | {room['first_render_while_joining_s']['min']:.2f} | "
        f"{room['first_render_while_joining_s']['median']:.2f} | {room['first_render_while_joining_s']['max']:.2f} | |",
        "",
        f"- Viewers below 2 redraws/s: {room['viewers_below_2_per_s']} of {room['viewers']}; never rendered: "
        f"{room['viewers_never_rendered']}.",
        f"- A new page while they watch, connect to three charts received: "
        f"{', '.join(f'{s:.2f} s' if s is not None else 'not within 120 s' for s in room['new_page_render_s'])} "
        "(goal ≤ 3 s).",
    ]
    if "chromium_new_page_render_s" in room:
        chromium = room["chromium_new_page_render_s"]
        lines.append("- A new chromium page (1366x768) while they watch, navigation to the first frame with its three "
                     "plots drawn (by the page's clock): "
                     + (f"{chromium:.2f} s." if chromium is not None else "not within 120 s."))
    lines += [
        f"- Server memory (RSS): {room['rss_before_mb']:.0f} MB with the presenter only, {room['rss_after_mb']:.0f} MB "
        f"with {room['viewers']} viewers (peak {room['rss_peak_mb']:.0f} MB): "
        f"**{room['rss_per_viewer_mb']:.2f} MB per viewer** (goal < 5 MB).",
        f"- Server CPU: {room['server_cpu_s_per_s']:.2f} CPU-seconds per second with the viewers, "
        f"{room['server_cpu_s_per_s_presenter_only']:.2f} with the presenter only (the room then trained "
        f"{room['training_iterations_per_s_presenter_only']:.1f} iterations/s): "
        f"**{room['cpu_ms_per_viewer_redraw']:.1f} ms of server CPU per viewer redraw**, so 30 viewers at 2 redraws/s "
        f"need about {60 * room['cpu_ms_per_viewer_redraw'] / 1000:.2f} CPU-seconds per second. Each viewer received "
        f"{room['received_kb_per_s_per_viewer']:.0f} KB/s.",
        f"- The server's children (the room's training process, where the room trains in a "
        f"process): {room.get('children_cpu_s_per_s', 0.0):.2f} CPU-seconds per second with the viewers, "
        f"{room.get('children_cpu_s_per_s_presenter_only', 0.0):.2f} with the presenter only; "
        f"{room.get('children_rss_mb', 0.0):.0f} MB resident. The room trained "
        f"{room.get('training_iterations_per_s_with_viewers', float('nan')):.1f} iterations/s with the viewers.",
        f"- Viewer runs (fragment redraws and whole-page runs) that Streamlit stopped for a rerun: "
        f"{stopped_share(room.get('viewer_run_ends'))}. Page errors: {room['page_errors'] or 'none'}.",
    ]
    if sessions:
        lines += [
            "",
            f"## {sessions['sessions']} independent sessions, each pressed Play, {sessions['seconds']} s",
            "",
            "| measure | min | median | max | goal |",
            "|---|---|---|---|---|",
            f"| redraws per page per second | {sessions['redraws_per_s']['min']:.2f} | "
            f"{sessions['redraws_per_s']['median']:.2f} | {sessions['redraws_per_s']['max']:.2f} | ≥ 1 |",
            f"| iterations per page per second | {sessions['iterations_per_s']['min']:.1f} | "
            f"{sessions['iterations_per_s']['median']:.1f} | {sessions['iterations_per_s']['max']:.1f} | |",
            f"| longest gap between two redraws (s) | {sessions['longest_gap_s']['min']:.2f} | "
            f"{sessions['longest_gap_s']['median']:.2f} | {sessions['longest_gap_s']['max']:.2f} | |",
            "",
            f"- Pages below 1 redraw/s: {sessions['sessions_below_1_per_s']} of {sessions['sessions']}.",
            "- A new page meanwhile, connect to three charts received: "
            + ", ".join(f"{s:.2f} s" if s is not None else "not within 120 s" for s in sessions["new_page_render_s"])
            + ".",
            f"- Server CPU: {sessions['server_cpu_s_per_s']:.2f} CPU-seconds per second, "
            f"{sessions['cpu_ms_per_redraw']:.0f} ms per redraw (training included). "
            f"Runs stopped for a rerun: {stopped_share(sessions.get('page_run_ends'))}. "
            f"Page errors: {sessions['page_errors'] or 'none'}.",
        ]
    lines += ["", f"Command: `{result['command']}`", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--viewers", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--stagger", type=float, default=0.2, help="seconds between two viewers joining")
    parser.add_argument("--new-pages", type=int, default=3, help="new pages timed while the others run")
    parser.add_argument("--sessions", type=int, default=5, help="independent sessions (0: skip that phase)")
    parser.add_argument("--chromium", action="store_true", help="also time one chromium page joining the room")
    parser.add_argument("--before", type=Path, help="another checkout whose room is measured first, the same way")
    parser.add_argument("--pin", type=int, metavar="CPU",
                        help="pin the server (and its children) to this CPU, the light pages to another")
    args = parser.parse_args()
    trees = dashboard_trees(args.before)
    if args.pin is not None and hasattr(os, "sched_setaffinity"):
        others = sorted(set(range(os.cpu_count())) - {args.pin})
        if others:
            os.sched_setaffinity(0, others)
    load_before = os.getloadavg()
    result = {"cpus": os.cpu_count(), "load_before": load_before, "pin": args.pin,
              "command": "python benchmarks/bench_room.py " + " ".join(
                  "DIR" if previous == "--before" else a for previous, a in zip([""] + sys.argv[1:], sys.argv[1:])),
              "trees": {}}
    env = {"FUNNELKIT_APP_DEVICE": "cpu"}
    for name, tree in trees.items():
        server = Server(env, tree=tree, cpu=args.pin)
        result["server_nice"] = server.ps.nice()
        try:
            phase = room_with_chromium if args.chromium else room_phase
            result["trees"][name] = asyncio.run(phase(server, args.viewers, args.seconds, args.stagger,
                                                      args.new_pages))
        finally:
            server.stop()
    result["room"] = result["trees"]["after"]
    if args.sessions:
        server = Server(env, cpu=args.pin)  # a fresh server: no room, nothing from the first phase
        try:
            result["sessions"] = asyncio.run(sessions_phase(server, args.sessions, args.seconds, args.new_pages))
        finally:
            server.stop()
    result["load_after"] = os.getloadavg()
    (RESULTS / "room.json").write_text(json.dumps(result, indent=2) + "\n")  # kept if the report fails
    save_results("room", result, markdown(result))


if __name__ == "__main__":
    main()
