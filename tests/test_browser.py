"""The dashboard in a real browser: Play trains live (the run_every fragment ticks), Pause stops;
the Samples tab's temperature slider, moved with the keyboard, redraws the grid.

Starts ``streamlit run app.py`` on a free local port and drives Debian's chromium with
Playwright. Skipped when chromium or playwright is missing, unless FUNNELKIT_REQUIRE_BROWSER=1,
which turns the skip into a failure (for CI machines that must run it).

    pytest tests/test_browser.py -m browser -s     # -s prints the timings
"""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .test_gallery import make_run

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
SERVER_START_S = 90
RENDER_S = 120  # the first script run imports torch and builds a model

pytestmark = pytest.mark.browser


def _browser_missing():
    """Why the browser test cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        return f"playwright is not installed ({error}); pip install playwright"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is absent; install Debian's chromium (apt-get install chromium)"
    return None


def require_browser():
    """Skip the test where chromium or playwright is missing; fail instead with FUNNELKIT_REQUIRE_BROWSER=1."""
    missing = _browser_missing()
    if missing:
        if os.environ.get("FUNNELKIT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"FUNNELKIT_REQUIRE_BROWSER=1 but the browser test cannot run: {missing}")
        pytest.skip(f"browser test skipped: {missing}")


def chromium_browser():
    """Debian's chromium, headless, driven by Playwright: a generator for a fixture (yields the browser,
    closes it after)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _image_runs(root):
    """MNIST 5-bit F-NSF, NSF and VAE run folders (untrained: the test needs pictures, not good ones)."""
    import funnelkit as fk

    fk.seed_everything(0)
    for name in ("f-nsf", "nsf", "vae"):
        make_run(root / "images-quick" / f"mnist5-{name}", fk.models.image_model(name, "mnist", 5, preset="quick"))
    return root


def serve_app(tmp_path_factory, **env):
    """Start ``streamlit run app.py`` on a free local port with ``env`` added; yield its URL; always terminate it.

    Skips (or fails, with FUNNELKIT_REQUIRE_BROWSER=1) where chromium or playwright is missing."""
    require_browser()
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    command = [
        sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"),
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
    ]
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=REPO, env=dict(os.environ, **env), stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"streamlit exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                tail = log.read_text()[-3000:]
                pytest.fail(f"streamlit did not answer /_stcore/health in {SERVER_START_S} s:\n{tail}")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A Streamlit server for the app, its image runs made here; always terminated in the finaliser."""
    if _browser_missing() is None:
        runs = _image_runs(tmp_path_factory.mktemp("runs"))
    else:
        runs = tmp_path_factory.mktemp("runs")  # serve_app skips (or fails) before the server starts
    yield from serve_app(tmp_path_factory, FUNNELKIT_APP_GRID="50", FUNNELKIT_APP_SAMPLES="300",
                         FUNNELKIT_APP_DEVICE="cpu", FUNNELKIT_APP_RUNS=str(runs))


@pytest.fixture(scope="module")
def page(server):
    for browser in chromium_browser():
        yield browser.new_page(viewport={"width": 1500, "height": 1100})


def _settle(page, timeout_s=RENDER_S):
    """Wait until the app is connected and its script has finished (Streamlit's own e2e pattern)."""
    page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']", timeout=timeout_s * 1000)
    page.wait_for_timeout(200)  # debounced widgets
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout_s * 1000)


def _iteration(page):
    metric = page.locator("[data-testid='stMetric']").filter(has_text="iteration")
    text = metric.locator("[data-testid='stMetricValue']").inner_text(timeout=RENDER_S * 1000)
    return int(re.sub(r"[^0-9]", "", text))


# The canvas of a live plot (funnelkit/viz/canvas_plots.js) inside the element keyed `key`: Streamlit mounts
# the plot in a shadow root, which document.querySelector does not enter.
CANVAS_IN = """(box) => {
    if (!box) return null;
    for (const el of [box, ...box.querySelectorAll('*')]) {
        const canvas = el.shadowRoot ? el.shadowRoot.querySelector('canvas') : null;
        if (canvas) return canvas;
    }
    return box.querySelector('canvas');
}"""


def _last_loss_step(page):
    """The last iteration drawn in the loss plot (the script writes it on its canvas), or -1 if empty; None
    while no loss plot is drawn."""
    return page.evaluate(f"""() => {{
        const canvas = ({CANVAS_IN})(document.querySelector('.st-key-live_loss'));
        return canvas && canvas.dataset.lastStep !== undefined ? Number(canvas.dataset.lastStep) : null;
    }}""")


def _wait_until(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what() if callable(what) else what}")


_FRAMES = """async ({ms, prefix}) => {
    // Every painted frame for `ms` ms: is each live plot (keyed prefix + density, ...) drawn (its canvas,
    // drawn without error) and at full
    // colour (no stale fade: CSS opacity over the plot and its ancestors at least 0.95)? As in
    // benchmarks/bench_dashboard_frames.py.
    const canvasIn = """ + CANVAS_IN + """;
    const bad = [];
    let frames = 0;
    const start = performance.now();
    await new Promise((done) => {
        const frame = (now) => {
            frames += 1;
            for (const key of ['density', 'samples', 'loss']) {
                const box = document.querySelector('.st-key-' + prefix + key);
                const canvas = canvasIn(box);
                if (!canvas || !canvas.dataset.drawn || canvas.dataset.error) bad.push(key + ' missing');
                let o = 1;
                for (let e = box; e && e !== document.documentElement; e = e.parentElement) {
                    o *= parseFloat(getComputedStyle(e).opacity);
                }
                if (box && o < 0.95) bad.push(key + ' greyed');
            }
            if (now - start < ms) requestAnimationFrame(frame); else done();
        };
        requestAnimationFrame(frame);
    });
    return {frames, bad: bad.slice(0, 20)};
}"""


def test_play_trains_live_and_pause_stops(page, server, tmp_path):
    start = time.monotonic()
    page.goto(server)
    _settle(page)
    page.wait_for_selector("[data-testid='stMetric']", timeout=RENDER_S * 1000)
    _wait_until(lambda: _last_loss_step(page) is not None, 60, "the loss chart")
    first_render = time.monotonic() - start
    before, before_chart = _iteration(page), _last_loss_step(page)

    page.get_by_role("button", name="Play").click()
    played = time.monotonic()
    _wait_until(lambda: _iteration(page) >= before + 5, 90,
                lambda: f"the iteration count to advance while playing (from {before}; now {_iteration(page)})")
    # While a tick redraws, the loss chart can be missing for a moment (None): that is "not yet".
    _wait_until(lambda: (_last_loss_step(page) or -1) > max(before_chart, before), 60, "the loss chart to advance")
    # More than one tick: the fragment keeps rerunning by itself, without any click.
    seen = _iteration(page)
    _wait_until(lambda: _iteration(page) > seen, 60, "a further tick")
    frames = page.evaluate(_FRAMES, {"ms": 3000, "prefix": "live_"})  # updated in place: never missing or greyed
    assert frames["frames"] > 0 and not frames["bad"], frames
    play_seconds = time.monotonic() - played
    steps_while_playing = _iteration(page) - before

    page.get_by_role("button", name="Pause").click()
    _wait_until(lambda: page.get_by_role("button", name="Play").is_enabled(), 60, "Play to come back after Pause")
    _settle(page)
    paused = _iteration(page)
    page.wait_for_timeout(2500)  # several run_every periods
    assert _iteration(page) == paused, "training went on after Pause"
    _wait_until(lambda: _last_loss_step(page) == paused, 30,
                lambda: f"the loss chart to end at iteration {paused}; it ends at {_last_loss_step(page)}")
    page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
    print(
        f"\nfirst render {first_render:.1f} s; {steps_while_playing} steps in {play_seconds:.1f} s of play "
        f"({steps_while_playing / play_seconds:.1f} steps/s including drawing); {frames['frames']} frames in 3 s "
        "with every plot drawn at full colour"
    )


def test_a_link_opens_its_settings_and_a_bad_one_shows_a_message(page, server):
    page.goto(f"{server}/?dataset=two-moons&hidden_features=0&tab=Latents")
    _settle(page)
    error = page.locator("[data-testid='stAlertContentError']").first
    error.wait_for(timeout=RENDER_S * 1000)
    assert "hidden units must be a whole number from 1 to 512, got 0" in error.inner_text()
    assert page.locator("[data-testid='stException']").count() == 0
    # The URL now holds the settings in use (a shareable link).
    _wait_until(lambda: "dataset=two-moons" in page.url and "hidden_features=64" in page.url, 30, "the settings in the URL")
    page.get_by_text("KS distance to N(0, 1)").first.wait_for(timeout=RENDER_S * 1000)


def _grid_bytes(page):
    """The bytes of the Samples tab's grid, as the browser fetches them from its src."""
    return page.evaluate(
        """async () => {
            const img = document.querySelector("[data-testid='stImage'] img");
            if (!img) return null;
            const answer = await fetch(img.src);
            return Array.from(new Uint8Array(await answer.arrayBuffer()));
        }"""
    )


def test_the_temperature_slider_redraws_the_samples(page, server):
    start = time.monotonic()
    page.goto(f"{server}/?tab=Samples")
    _settle(page)
    image = page.locator("[data-testid='stImage'] img").first
    image.wait_for(timeout=RENDER_S * 1000)
    first_grid = time.monotonic() - start
    before_src, before = image.get_attribute("src"), _grid_bytes(page)
    assert bytes(before[:8]) == b"\x89PNG\r\n\x1a\n"
    assert page.locator("[data-testid='stException']").count() == 0

    slider = page.locator("[data-testid='stSlider']").filter(has_text="Temperature")
    thumb = slider.locator("input[type='range']")  # react-aria's slider: a hidden range input takes the keys
    shown = slider.locator("[data-testid='stSliderThumbValue']")
    assert shown.inner_text() == "1.00"
    for _ in range(10):  # 1.0 - 2 x 0.05; a key pressed while the page re-renders can be lost: press until shown
        if shown.inner_text() == "0.90":
            break
        thumb.focus()
        thumb.press("ArrowLeft")
        page.wait_for_timeout(300)
    # the server has taken the last value (it writes the URL), and its run has finished
    _wait_until(lambda: "temperature=0.9" in page.url, 60, lambda: f"temperature=0.9 in the URL ({page.url})")
    _settle(page)
    _wait_until(lambda: image.get_attribute("src") != before_src, 60, "the grid to be redrawn")
    after = _grid_bytes(page)
    assert after != before and bytes(after[:8]) == b"\x89PNG\r\n\x1a\n"
    assert shown.inner_text() == "0.90"
    # The paper's presets: T = 0.5 selects the same value on the slider.
    page.locator("[data-testid='stButtonGroup']").get_by_text("T = 0.5", exact=True).click()
    _wait_until(lambda: shown.inner_text() == "0.50", 60, "the slider to follow the preset")
    assert page.locator("[data-testid='stException']").count() == 0
    print(f"\nSamples tab: first grid {first_grid:.1f} s after opening the page")


_LAYOUT = """() => {
    const canvasIn = """ + CANVAS_IN + """;
    const canvases = ['density', 'samples', 'loss'].map(key => canvasIn(document.querySelector('.st-key-live_' + key)))
        .filter(canvas => canvas && canvas.dataset.drawn);
    const charts = canvases.map(canvas => {
        const box = canvas.getBoundingClientRect();
        return {top: box.top, bottom: box.bottom, width: Number(canvas.dataset.plotWidth),
                height: Number(canvas.dataset.plotHeight)};
    });
    const ticks = canvases.map(canvas => Number(canvas.dataset.fontPx));  // the script's text size
    const sidebar = document.querySelector("[data-testid='stSidebar']");
    const play = [...document.querySelectorAll('button')].find(b => b.innerText.trim().endsWith('Play'));
    return {charts, ticks, deploy: !!document.querySelector("[data-testid='stAppDeployButton']"),
            sidebar: sidebar ? sidebar.getBoundingClientRect().width : 0,
            play: play ? play.getBoundingClientRect().bottom : null};
}"""


@pytest.mark.parametrize("query", ["", "?present=1"])
def test_the_train_tab_fits_a_1366x768_screen(page, server, query, tmp_path):
    """Controls and the three Train plots on one 1366x768 screen (no scrolling), a density plot of at least
    300 px (the normal mode), tick labels of at least 14 px, no Deploy button; ?present=1 hides the sidebar."""
    small = page.context.browser.new_page(viewport={"width": 1366, "height": 768})
    try:
        small.goto(server + query)
        _settle(small)
        _wait_until(lambda: len(small.evaluate(_LAYOUT)["charts"]) == 3
                    and all(c["width"] > 0 for c in small.evaluate(_LAYOUT)["charts"]), 60, "three drawn plots")
        small.wait_for_timeout(500)
        layout = small.evaluate(_LAYOUT)
        small.screenshot(path=str(tmp_path / "train-1366x768.png"))
    finally:
        small.close()
    assert not layout["deploy"], "the Deploy button is shown (client.toolbarMode should be minimal)"
    assert layout["play"] is not None and layout["play"] <= 768
    assert all(c["bottom"] <= 768 for c in layout["charts"]), layout["charts"]
    assert min(layout["ticks"]) >= 14, layout["ticks"]
    density = layout["charts"][0]
    if query:
        assert layout["sidebar"] == 0  # presentation mode: no sidebar
        assert density["width"] >= 280
    else:
        assert density["width"] >= 300 and density["height"] >= 300, density


_ANIMATION = """() => {
    const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g => g.layout && g.layout.sliders);
    if (!gd || !gd._fullData || !gd._fullData[0]) return null;
    const box = gd.getBoundingClientRect();
    const play = [...gd.querySelectorAll('.updatemenu-button')].find(b => b.textContent.includes('Play'));
    const labels = [...gd.querySelectorAll('.slider-label')].map(l => {
        const r = l.getBoundingClientRect(); return {text: l.textContent, x: r.x + r.width / 2, y: r.y}; });
    const rail = gd.querySelector('.slider-rail-rect');
    const x = gd._fullData[0].x;
    return {frames: (gd._transitionData && gd._transitionData._frames || []).length,
            active: gd._fullLayout.sliders[0].active, first: Number(x[0]), last: Number(x[x.length - 1]),
            play: play ? play.getBoundingClientRect().bottom : null, labels,
            rail: rail ? rail.getBoundingClientRect().y + rail.getBoundingClientRect().height / 2 : null,
            bottom: box.bottom, right: box.right};
}"""


def test_watch_it_move_has_a_slider_and_play_and_the_slider_moves_the_points(page, server, tmp_path):
    """The animation on a 1366x768 screen: its slider and Play button are there and on screen, and moving the
    slider to another stage moves the points (plotly runs the frames in the browser)."""
    small = page.context.browser.new_page(viewport={"width": 1366, "height": 768})
    try:
        small.goto(server + "/?tab=Watch+it+move")
        _settle(small)
        _wait_until(lambda: (small.evaluate(_ANIMATION) or {}).get("frames", 0) > 1, 60, "the animation's frames")
        before = small.evaluate(_ANIMATION)
        small.screenshot(path=str(tmp_path / "watch-it-move-1366x768.png"))
        target = before["labels"][len(before["labels"]) // 2]  # a stage in the middle: the data
        small.mouse.click(target["x"], before["rail"])
        _wait_until(lambda: small.evaluate(_ANIMATION)["active"] != before["active"], 10, "the slider to move")
        small.wait_for_timeout(1500)  # the points glide to the new stage
        after = small.evaluate(_ANIMATION)
        small.screenshot(path=str(tmp_path / "watch-it-move-data.png"))
    finally:
        small.close()
    assert before["frames"] == len(before["labels"]) >= 5
    assert before["play"] is not None and before["play"] <= 768
    assert before["bottom"] <= 768 and before["right"] <= 1366, before
    assert after["active"] == len(before["labels"]) // 2
    assert (after["first"], after["last"]) != (before["first"], before["last"])
