"""funnelkit dashboard: train a funnel on 2-D toys live, look inside it, sample image models at a
temperature, compare funnel, NSF and VAE, read Eq. 6.

    streamlit run app.py

Thin wiring only: the state of a run is ``funnelkit.app.live.LiveRun``, the Train tab's live plots are
``funnelkit.viz.canvas_plots`` (drawn in the browser by its script), the other figures ``funnelkit.viz.interactive``,
and the image runs, their sample grids and metrics are
``funnelkit.app.gallery``. Settings live in the URL (``?dataset=two-moons&hidden_features=32``,
``?tab=Samples&temperature=0.5&sample_seed=3``), so a teacher can share a link that opens the same view.
``?present=1`` is the presentation mode for a projector: larger text, no sidebar, no toolbar.

Environment: ``FUNNELKIT_APP_GRID`` (density grid resolution, default 100),
``FUNNELKIT_APP_SAMPLES`` (samples drawn, default 1000), ``FUNNELKIT_APP_DEVICE``
(auto | cpu | cuda | mps, default auto), ``FUNNELKIT_APP_THREADS`` (torch CPU threads, default 1;
0 leaves torch's default), ``FUNNELKIT_APP_RUNS`` (folders searched for image runs, separated by
``os.pathsep``; default data/runs and runs/), ``FUNNELKIT_APP_METRIC_SAMPLES`` (samples behind the
digit FID under each MNIST grid, default 500; 0 shows no FID).
"""

import gc
import importlib
import logging
import os
import platform
import random
import sys
import threading
import time
from dataclasses import replace

import streamlit as st

import funnelkit as fk
from funnelkit.app import frames, live_settings
from funnelkit.paths import REPO_ROOT, shown
from funnelkit.viz import canvas_plots as cp


class OnUse:
    """A module imported on its first use. The first page of a server just started is drawn from the
    opening frame kept on disk (funnelkit.app.frames) before torch is loaded (about 2 s to import here)."""

    def __init__(self, name):
        self.name = name

    def __getattr__(self, attribute):
        return getattr(importlib.import_module(self.name), attribute)


torch = OnUse("torch")
live = OnUse("funnelkit.app.live")
gallery = OnUse("funnelkit.app.gallery")
classroom = OnUse("funnelkit.app.room")
recovery = OnUse("funnelkit.app.live_recovery")
iv = OnUse("funnelkit.viz.interactive")  # the other tabs' plotly figures: plotly loads when one is first drawn

GRID = int(os.environ.get("FUNNELKIT_APP_GRID", "100"))
N_SAMPLES = int(os.environ.get("FUNNELKIT_APP_SAMPLES", "1000"))
# Small 2-D flows train several times faster on one CPU thread than on many (thread overhead
# dominates such tiny operations, worse on a busy machine); FUNNELKIT_APP_THREADS overrides.
CPU_THREADS = int(os.environ.get("FUNNELKIT_APP_THREADS", "1"))
# While Play runs, each live tab redraws itself in cycles (live_cycle): it first shows what is ready, at once,
# so that no chart waits greyed out for training; then it trains for the rest of the cycle (at least MIN_TICK)
# and makes the next cycle's pictures, paced by live.Paced.
TRAIN_CYCLE = 0.16  # seconds a live cycle of the Train tab lasts, drawing and training: 5 redraws a second asked,
# and the cycle's own cost (a few hundredths) comes on top: 5.7 measured in chromium with the server on one core
# (benchmarks/results/dashboard_frames.md; 0.2 s gave 4.6)
SLOW_CYCLE = 0.5  # the same for the Latents and How it works tabs (their figures cost more to send)
# The browser asks for the next cycle twice per cycle (Streamlit queues one request while a cycle runs), so
# that a cycle usually starts when the last ends; what idle time a late timer still leaves (a busy machine),
# the next cycle trains for, too.
MIN_TICK = 0.03  # seconds of training per cycle, at least (Pause answers within a cycle or two)
LOSS_POINTS = 800  # points per line of the live loss chart
TRAIN_DRAW_SHARE = 0.2  # of the time while Play runs, at most this is spent making new density and samples
TABS = ["Train", "Latents", "Watch it move", "Samples", "Compare", "How it works"]
LIVE_TABS = ("Train", "Latents", "Watch it move", "How it works")  # the tabs that use the 2-D live run
NOTEBOOKS = {
    "notebooks/00_derivation_eq6.ipynb": "Eq. 6 derived step by step, and checked numerically",
    "notebooks/02_four_circles.ipynb": "the four-circles experiment of the paper (Fig. 2)",
    "notebooks/03_layers.ipynb": "every funnel layer of the paper, built and checked numerically",
    "notebooks/04_tabular.ipynb": "Table 1 on the tabular sets, and the F-MLP speed claim measured",
    "notebooks/05_images.ipynb": "Table 2 and Fig. 3: image funnels against NSF and the VAE",
    "notebooks/06_temperature_and_quality.ipynb": "Fig. 4 (samples at temperatures) and Table 3 (IS and FID)",
    "notebooks/07_anomaly_detection.ipynb": "Table 4: MNIST against Fashion-MNIST anomaly detection",
}
DATASET_NAMES = {
    "four-circles": "Four circles (paper Fig. 2)",
    "two-moons": "Two moons",
    "checkerboard": "Checkerboard",
    "eight-gaussians": "Eight Gaussians",
}
MODEL_NAMES = {"f-nsf": "F-NSF: funnel, 2-D → 1-D", "nsf": "NSF: 2-D → 2-D"}
# Short explanations shown on hover wherever these words appear (for students meeting them first).
GLOSSARY = {
    "ELBO": "Evidence lower bound: what a VAE maximises instead of log p(x). It is never above log p(x), "
            "so a VAE's bits/dim from it are an upper bound, not exact.",
    "bits/dim": "Bits per dimension: −log₂ p(x) divided by the number of pixel values. How many bits the "
                "model needs per value to encode an image; lower is better.",
    "temperature": "T scales the base noise when sampling: z ~ N(0, T²I). T < 1 gives cleaner, less varied "
                   "samples; T = 1 samples the model itself.",
    "latent": "The variable z the flow maps the data to; training makes it look like N(0, 1). A funnel's "
              "latent is smaller than the data.",
    "stand-in": "Data used in place of the paper's data set (which is not on this machine): compare the models "
                "with each other, not with the paper's numbers.",
}
PLOT_HEIGHT = 420  # px: at 1366x768 the buttons and all three Train plots fit on one screen
PLOT_CONFIG = {"displayModeBar": False}  # the toolbar would cover the title; drag zooms, double-click resets
# The Train tab's and a room's three live plots, drawn by funnelkit/viz/canvas_plots.js, mounted once per page
# (PLOT_SCRIPT); each plot is a LIVE_PLOT that calls it, redrawn in place.
PLOT_SCRIPT = st.components.v2.component("funnelkit_plot_script", js=cp.SCRIPT.read_text(encoding="utf-8"))
LIVE_PLOT = st.components.v2.component("funnelkit_live_plot", js=cp.STUB)
TRAIN_CAPTIONS = (
    "Bright where the model puts probability: the bright shapes should sit on the red data points, and be sharp.",
    "Points drawn from the model (blue) over the data (grey): they should cover the data evenly, not the gaps.",
    "Loss per step (grey) and its mean (blue). It should fall towards the dashed line, the best any model can do.",
)

st.set_page_config(page_title="funnelkit: funnels live", page_icon="🌀", layout="wide")
LOG = logging.getLogger("funnelkit.app")
ss = st.session_state
PRESENT = st.query_params.get("present") == "1"


def term(word, shown=None):
    """``word`` (or ``shown``) with its GLOSSARY explanation on hover, for Markdown with HTML allowed."""
    return f'<abbr title="{GLOSSARY[word]}">{shown or word}</abbr>'


def page_style():
    """A compact page for 1366x768 projectors; ``?present=1`` adds larger text, no sidebar, no toolbar."""
    css = """
    [data-testid="stMainBlockContainer"] { padding-top: 1.6rem; padding-bottom: 1rem; padding-left: 1.5rem;
                                          padding-right: 1.5rem; }
    [data-testid="stMetricValue"] { font-size: 1.5rem; }
    [data-testid="stMetric"] { padding: 0; }
    abbr[title] { text-decoration: underline dotted; cursor: help; }
    .st-key-plot_script { display: none; }  /* the live plots' script (plot_script): no place on the page */
    """
    if PRESENT:
        css += """
        html { font-size: 19px; }
        [data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
        [data-testid="stToolbar"], [data-testid="stHeader"], [data-testid="stDecoration"] { display: none; }
        [data-testid="stMainBlockContainer"] { padding-top: 0.8rem; }
        """
    st.html(f"<style>{css}</style>")


def plot_script():
    """The script that draws the live plots, once per page run (not in the fragments that redraw them)."""
    PLOT_SCRIPT(key="plot_script")


def torch_ready():
    """Import torch now (if the page has not yet) with its CPU threads set (FUNNELKIT_APP_THREADS)."""
    if CPU_THREADS > 0 and torch.get_num_threads() != CPU_THREADS:
        torch.set_num_threads(CPU_THREADS)


def metric_samples():
    return int(os.environ.get("FUNNELKIT_APP_METRIC_SAMPLES", str(gallery.METRIC_SAMPLES)))


# -- state ---------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _frozen_heap():
    """Process-wide: how many modules were loaded when the heap was last frozen (keep_collections_short)."""
    return {"modules": 0}


def keep_collections_short():
    """Keep Python's own garbage collections short. Streamlit's full collection after every script run
    (runner.postScriptGC) is off in .streamlit/config.toml: it walked every object alive (0.2 s of CPU here
    with torch, nflows and plotly loaded) after each of the 5 live redraws a second, and stalled a room's
    server as pages joined. The interpreter still collects by itself; gc.freeze() puts the objects alive now
    out of its reach. It runs again only when modules were imported since, so it holds what lives as long as
    the process (modules, classes, functions), and each session's own objects are collected as before."""
    frozen = _frozen_heap()
    if len(sys.modules) != frozen["modules"]:
        gc.freeze()
        frozen["modules"] = len(sys.modules)


def init_session():
    """Once per browser session: read the settings from the URL (bad values become messages)."""
    if "settings_ready" in ss:
        return
    settings, problems = live_settings.LiveSettings.from_query(st.query_params.to_dict())
    for name, value in settings.to_dict().items():
        ss[name] = value
    choice = os.environ.get("FUNNELKIT_APP_DEVICE", "auto")
    try:
        if choice not in ("auto", "cpu"):  # these two always work; checking the others needs torch
            fk.pick_device(choice)
    except ValueError as error:
        problems.append(f"FUNNELKIT_APP_DEVICE={choice!r} was ignored: {error}. Using auto.")
        choice = "auto"
    ss.device_choice = choice
    ss.url_problems = problems
    ss.running = False
    ss.train_error = None
    ss.settings_ready = True


def current_settings():
    values = {name: ss[name] for name in live_settings.LiveSettings.__dataclass_fields__}
    return live_settings.LiveSettings(**values)


def current_run(settings):
    """The session's LiveRun, created once and adapted when the settings change. Raises when the settings
    cannot be used; the run then keeps its model and settings (LiveRun.apply is all or nothing)."""
    torch_ready()
    device = fk.pick_device(ss.get("device_choice", "auto"))
    if ss.get("run") is None:
        run = live.LiveRun.create(settings, device=device, pretrained=False)
        if settings.pretrained_path() is not None:
            try:
                run.load_pretrained()
            except Exception as error:  # a damaged or unreadable file: a fresh model, and say why
                LOG.error("loading the shipped model failed", exc_info=error)
                ss.train_error = (f"The shipped model could not be loaded ({recovery.describe(error)}), so this is a fresh, "
                                  "untrained model. Press Play to train it, or Load pretrained to try again.")
        ss.run = run
    elif ss.run.apply(settings, device) != "same":
        ss.url_problems = []  # the user has moved on from the link
        ss.train_error = None
    return ss.run


def back_to_working_settings():
    """The way back from settings that failed: the sidebar takes the settings of the session's model
    again (the defaults when it has none yet)."""
    run = ss.get("run")
    good = run.settings if run is not None else live_settings.LiveSettings()
    for name, value in good.to_dict().items():
        ss[name] = value


def settings_failed(error):
    """Settings that cannot be used: what went wrong, and a button back to the ones that worked."""
    LOG.error("these settings failed", exc_info=error)
    st.error(f"These settings cannot be used: {recovery.describe(error) if not isinstance(error, ValueError) else error}")
    has_run = ss.get("run") is not None
    st.button("Back to the settings of the model" if has_run else "Back to the default settings",
              key="back_to_settings", on_click=back_to_working_settings, icon=":material/undo:",
              help="The sidebar takes the settings of the model you had (its training goes on from where it was).")


def write_url(settings):
    """Put the settings (the 2-D run's or the image tabs') in the page URL, so the link reopens them."""
    for name, value in settings.to_query().items():
        if st.query_params.get(name) != value:
            st.query_params[name] = value


# -- buttons (callbacks run before the script, so the page shows their effect at once) -----------
def session_run():
    """The session's LiveRun; made now if a click came before the first page run had built it."""
    if ss.get("run") is None:
        current_run(current_settings())
    return ss.run


def stop_on_error(doing, error, restore=True):
    """An error nobody expected while ``doing`` (a bug, memory running out) becomes a message with a way
    back, never a traceback: training pauses and, with ``restore``, the run steps back to its last good
    state (LiveRun.fail); the traceback goes to the server's log."""
    LOG.error("%s failed", doing, exc_info=error)
    ss.running = False
    run = ss.get("run")
    if run is not None:
        try:
            run.fail(doing, error, restore=restore)
            return
        except Exception as again:  # stepping back failed too: only a fresh model is left
            LOG.error("stepping back after that failed too", exc_info=again)
    ss.train_error = (f"{doing[0].upper()}{doing[1:]} failed with an error the kit did not expect "
                      f"({recovery.describe(error)}). Press Reset for a fresh model.")


def guarded(action, doing):
    """A button's callback whose errors become a message (stop_on_error) instead of a traceback."""
    def callback():
        try:
            action()
        except Exception as error:
            stop_on_error(doing, error)
    return callback


def play():
    ss.running = True
    ss.train_error = None
    session_run().play()  # ends a pause the run made itself after a divergence


def pause():
    ss.running = False


def step():
    session_run().step(1)  # a divergence does not raise: the run steps back and says so in run.message


def reset():
    ss.running = False
    ss.train_error = None
    session_run().reset()


def load_pretrained():
    try:
        session_run().load_pretrained()
        ss.train_error = None
    except (ValueError, OSError) as error:  # the file went away or is damaged: say so, keep the model
        ss.train_error = f"Could not load the pretrained model: {error}"


# -- sidebar -------------------------------------------------------------------------------------
def sidebar():
    with st.sidebar:
        st.header("Settings")
        st.caption("The 2-D model of the Train, Latents, Watch it move and How it works tabs.")
        st.selectbox("Dataset", live_settings.DATASETS, key="dataset", format_func=DATASET_NAMES.get)
        st.radio("Model", live_settings.MODELS, key="model", format_func=MODEL_NAMES.get,
                 help="F-NSF ends in a funnel layer (Eq. 6) that drops x₁; NSF keeps both dimensions.")
        low, high = live_settings.LIMITS["hidden_features"]
        st.number_input("Hidden units", low, high, step=8, key="hidden_features", help="Width of each spline's MLP.")
        low, high = live_settings.LIMITS["num_bins"]
        st.number_input("Spline bins", low, high, step=1, key="num_bins")
        low, high = live_settings.LIMITS["lr"]
        st.number_input("Learning rate", low, high, step=1e-4, format="%.5f", key="lr",
                        help="Adam's step size. From about 0.3 up the splines often break down within a few "
                             "dozen steps: the run then goes back to its last good model and pauses, so you "
                             "can see what too large a step does.")
        low, high = live_settings.LIMITS["batch_size"]
        st.number_input("Batch size", low, high, step=32, key="batch_size")
        low, high = live_settings.LIMITS["seed"]
        st.number_input("Training seed", low, high, step=1, key="seed",
                        help="Initial weights and the training data stream.")
        st.caption("Dataset, model, sizes and seed start a fresh model; learning rate and batch size "
                   "apply to the running one. The page URL holds these settings: copy it to share.")


def device_name(device):
    return f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else str(device)


def sidebar_footer():
    """The device and the versions, last on the page. A page drawn from a kept opening frame (a new page of a
    server that has not loaded torch yet) names the frame's device and reads the versions from the installed
    packages, so it never waits for torch; torch is then imported in the background (warm_up)."""
    kept_device = ss.pop("page_device", None)
    if kept_device is None or "torch" in sys.modules:
        torch_ready()
        device = device_name(fk.pick_device(ss.device_choice))
        choices = ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else []) \
            + (["mps"] if torch.backends.mps.is_available() else [])
    else:
        device, choices = kept_device, ["auto", "cpu"]
        warm_up()
    with st.sidebar:
        st.divider()
        st.selectbox("Device", choices, key="device_choice",
                     help="auto: cuda if torch sees one, else mps, else cpu. Changing it starts a fresh model.")
        v = frames.installed_versions()
        st.caption(
            f"Running on **{device}**  \n"
            f"funnelkit {v['funnelkit']} · torch {v['torch']} · nflows {v['nflows']} · "
            f"streamlit {st.__version__} · Python {platform.python_version()}"
        )


WARM_UP_AFTER = 1.0  # seconds: the browser draws the first page before torch takes a core to load


@st.cache_resource(show_spinner=False)
def warm_up():
    """Once per server process: import torch and the live run in a thread of their own, WARM_UP_AFTER the first
    page was sent, so that the first Play (or another tab) does not wait two seconds for them."""
    def load():
        time.sleep(WARM_UP_AFTER)
        try:
            importlib.import_module("funnelkit.app.live")
        except Exception as error:  # the page that needs it will say what went wrong
            LOG.warning("loading torch in the background failed: %s", error)

    threading.Thread(target=load, name="funnelkit-warm-up", daemon=True).start()
    return True


# -- Train tab -----------------------------------------------------------------------------------
def live_style():
    """While Play runs, the live views keep their full colour between two redraws. Streamlit fades an element
    that a running script has not sent again within 0.5 s (its stale state); each live cycle sends all of
    them first (live_cycle), but a server starved of CPU by other work can take longer, and the plots would
    blink grey. The fade only says that a newer frame is coming: here one comes within a cycle. Always sent
    (empty while paused), so that the elements after it keep their places when Play starts."""
    rule = ("[data-testid='stElementContainer'][data-stale='true'] { opacity: 1 !important; "
            "transition: none !important; }") if ss.running else ""
    st.html(f"<style>{rule}</style>")


def train_tab(run, opening_view=None):
    """The Train tab: the buttons, then the numbers and plots in a fragment that redraws itself while Play
    runs. A new session shows the shipped model's ``opening_view`` in the same fragment, so that when Play
    starts the live plots take the opening ones' places, updated in place rather than drawn anew."""
    live_style()
    control_buttons(opening_view is not None or run.settings.pretrained_path() is not None)
    st.fragment(run_every=TRAIN_CYCLE / 2 if ss.running else None)(train_live)(opening_view)


def opening_tab(view):
    """The Train tab of a new session from the shipped model's :class:`funnelkit.app.live.Opening`. The
    session's LiveRun is built only when a button or another tab needs it: the first in a server
    process takes a second or two (torch's optimiser machinery loads), and the page is drawn before."""
    train_tab(None, view)


def show_opening(view):
    note = SHIPPED_NOTE.format(lr=view.lr) if view.lr == live_settings.SHIPPED_CONTINUE_LR else ""
    loss = cp.loss_plot(view.steps, view.losses, view.reference, window=LOSS_WINDOW, max_points=LOSS_POINTS,
                        height=PLOT_HEIGHT)
    show_panel(view.iteration, view.last_loss, view.reference, None, caption_line(view.source, note),
               f"{view.parameters:,} parameters on {view.device}; learning rate {view.lr:g}.",
               (*picture_plots(view.pictures), loss))


def opening(settings):
    """The shipped model's opening view for ``settings``, or None (no checkpoint, or it cannot be read:
    the LiveRun then says why)."""
    if ss.get("run") is not None or ss.running:
        return None
    kept = frames.read_opening(settings, ss.device_choice, GRID, N_SAMPLES)  # no torch needed
    if kept is not None:
        ss.page_device = kept.device
        return kept
    torch_ready()
    try:
        view = live.opening_view(settings, fk.pick_device(ss.device_choice), GRID, N_SAMPLES)
    except (ValueError, OSError, RuntimeError, KeyError, ArithmeticError):
        return None
    if view is not None:
        try:
            frames.write_opening(view, settings, ss.device_choice, GRID, N_SAMPLES)  # for the next server
        except OSError as error:  # a read-only cache folder: the next start draws it again
            LOG.warning("the opening frame could not be kept: %s", error)
    return view


SHIPPED_NOTE = " Play goes on at learning rate {lr:g}, where its cosine schedule ended: no jump in the loss."


def caption_line(source, note):
    return f"{'Training…' if ss.running else 'Paused.'} Model: {source}.{note}"


def control_buttons(has_pretrained):
    cols = st.columns([1, 1, 1, 1, 1.5, 3])
    cols[0].button("Play", key="play", on_click=guarded(play, "starting training"), disabled=ss.running,
                   type="primary", width="stretch", icon=":material/play_arrow:")
    cols[1].button("Pause", key="pause", on_click=pause, disabled=not ss.running, width="stretch",
                   icon=":material/pause:")
    cols[2].button("Step", key="step", on_click=guarded(step, "the step"), disabled=ss.running, width="stretch",
                   icon=":material/skip_next:",
                   help="One training iteration (one Adam step on a fresh batch).")
    cols[3].button("Reset", key="reset", on_click=guarded(reset, "the reset"), width="stretch",
                   help="A fresh, untrained model.", icon=":material/restart_alt:")
    if has_pretrained:
        cols[4].button("Load pretrained", key="load_pretrained", on_click=guarded(load_pretrained, "loading"),
                       width="stretch", help="The model shipped in data/runs/four-circles-quick, trained with the quick preset.")


def live_cycle(name, what, show, views, cycle):
    """One redraw of a live tab, in a fragment that reruns while Play runs; it lasts about ``cycle`` seconds.

    First ``show()`` what is ready (while playing: the views the last cycle made), at once: every element
    of the fragment is sent again within a few hundredths of a second, so none waits, stale, while the
    run trains. Then, while playing, train for the rest of the cycle and make the next cycle's views
    (``views(paced=True, make_due=True)``). Any error becomes a message with a way back (stop_on_error):
    never a traceback. ``name`` keys the cycle's state; ``what`` names its views in messages.
    """
    keep_collections_short()
    run = ss.run
    playing = ss.running
    started = time.perf_counter()
    try:
        ready = views(paced=playing, make_due=False)  # while playing: what the last cycle made
    except Exception as error:  # the first view of this state failed: say so where it would be
        stop_on_error(f"drawing {what}", error, restore=False)
        ready = None
    show(ready)
    if not playing:
        return
    classroom.ACTIVITY.beat(ss.setdefault("training_id", f"session-{time.time_ns()}"))  # for the shared line
    shared = classroom.shared_line(classroom.ACTIVITY.count())
    if shared:
        st.caption(shared)
    if ss.running:
        # The rest of the cycle, and the time the browser left idle before this one (its timer runs late on a
        # busy machine): what would otherwise be lost to training, at most a cycle more.
        spent = time.perf_counter() - started + ss.get(f"{name}_refresh_s", 0.0)
        idle = ss.get(f"{name}_idle_s", 0.0)
        if ss.get(f"{name}_ended") is not None:
            idle = 0.8 * idle + 0.2 * min(started - ss[f"{name}_ended"], cycle)
        ss[f"{name}_idle_s"] = idle
        try:
            run.tick(max(MIN_TICK, cycle - spent) + idle)  # a breakdown does not raise: the run steps back, pauses
        except Exception as error:
            stop_on_error("training", error)
    if ss.running and not run.paused:
        start = time.perf_counter()
        try:
            views(paced=True, make_due=True)  # the next cycle's, made now, while nothing on the page is stale
        except Exception as error:
            stop_on_error(f"drawing {what}", error, restore=False)
        cost = time.perf_counter() - start
        ss[f"{name}_refresh_s"] = 0.8 * ss.get(f"{name}_refresh_s", cost) + 0.2 * cost
    ss[f"{name}_ended"] = time.perf_counter() if ss.running else None
    if run.paused or not ss.running:
        ss.running = False
        st.rerun()  # the whole page, so that the timer stops and Play comes back, with the message


def train_live(opening_view=None):
    """The Train tab's numbers and plots, redrawn in place 5 times a second while Play runs."""
    if opening_view is not None and ss.get("run") is None:
        show_opening(opening_view)
        return
    run = ss.run
    live_cycle("train", "the Train tab's plots", lambda views: show_train(run, views),
               lambda **when: train_views(run, **when), TRAIN_CYCLE)


def show_train(run, views):
    note = ""
    if run.source.startswith("shipped") and run.lr == live_settings.SHIPPED_CONTINUE_LR:
        note = SHIPPED_NOTE.format(lr=run.lr)
    help_line = (f"{run.model.num_parameters():,} parameters on {run.device}; learning rate {run.lr:g}. A shipped "
                 "model was trained with a cosine schedule that ends at 0: it goes on at a small rate until you "
                 "set one in the sidebar (at 0.003 its loss would first rise from 2.90 to about 3.0).")
    show_panel(run.iteration, run.last_loss, run.reference_nll(), run.steps_per_second,
               caption_line(run.source, note), help_line, views, run)


def train_views(run, paced, make_due):
    """(density, samples, loss) plots of the run. The density and samples are made again only when
    live.Paced says so while playing (``paced``, ``make_due``); the loss plot every time (a millisecond)."""
    pictures = ss.setdefault("train_paced", live.Paced(share=TRAIN_DRAW_SHARE))
    density, samples = pictures.get((id(run), run.generation), run.iteration,
                                    lambda: picture_plots(run.pictures(GRID, N_SAMPLES)), paced, make_due)
    history = run.trainer.history
    loss = cp.loss_plot(history["step"], history["loss"], run.reference_nll(), window=LOSS_WINDOW,
                        max_points=LOSS_POINTS, height=PLOT_HEIGHT)
    return density, samples, loss


LOSS_WINDOW = 50  # steps in the running mean of the loss plot


def picture_plots(pictures):
    """The density and samples plots of a :class:`funnelkit.app.live.Pictures` (a few milliseconds)."""
    return (cp.density_plot(pictures.axis, pictures.log_density, pictures.data, height=PLOT_HEIGHT),
            cp.samples_plot(pictures.samples, pictures.data, title="Samples", height=PLOT_HEIGHT))


def show_panel(iteration, last_loss, reference, speed, caption, caption_help, plots, run=None):
    """The run's messages, numbers and one-line state, and the three plots with what to look at in each.
    ``plots`` is None when they could not be made (the message says why). Every element is always sent,
    in the same places, so that the plots are updated in place."""
    show_run_message(run)
    run_numbers(iteration, last_loss, reference, speed)
    st.caption(caption, help=caption_help)
    plot_row(plots, ("live_density", "live_samples", "live_loss"))


def run_numbers(iteration, last_loss, reference, speed):
    """The four numbers above the live plots, on a session's page and a room's."""
    m = st.columns(4)
    m[0].metric("iteration", f"{iteration:,}")
    m[1].metric("loss (−log p, nats)", "–" if last_loss is None else f"{last_loss:.3f}",
                help=f"Mean of the last {frames.RECENT_STEPS} steps of −log p(x), the negative log-likelihood the model "
                     "is trained to lower (exact for a funnel: no bound).")
    if reference is not None:
        m[2].metric("best possible (true density)", f"{reference:.3f}")
    m[3].metric("steps / s", "–" if speed is None else f"{speed:.1f}",
                help="Training speed: steps per second of training time (drawing excluded).")


def plot_row(plots, keys):
    """The three live plots (density, samples, loss: dicts of funnelkit.viz.canvas_plots) side by side, each
    with what to look at under it. Under the same ``keys`` the browser keeps the elements and redraws them in
    place. (A component keeps a state under its key in the session's state, so the keys must not be ones the
    page uses: hence live_density, not density.) ``plots`` None: a message in their places."""
    c = st.columns([1.7, 1.0, 1.0])
    for column, key, plot in zip(c, keys, plots or (None,) * 3):
        if plot is None:
            column.info("This plot could not be drawn: see the message above.", icon=":material/block:")
        else:
            with column:
                LIVE_PLOT(key=key, data=plot, height=plot["height"])
    for column, caption in zip(c, TRAIN_CAPTIONS):
        column.caption(caption)


def show_run_message(run):
    """Why the run paused itself (a divergence it stepped back from, an error), and any error of a button;
    in a container that is always there, so that the elements after it keep their places."""
    with st.container():
        if run is not None and run.message:
            st.warning(run.message, icon=":material/warning:")
        if ss.train_error:
            st.error(ss.train_error)


# -- Latents tab ---------------------------------------------------------------------------------
def latents_tab(run):
    live_style()
    st.fragment(run_every=SLOW_CYCLE / 2 if ss.running else None)(latents_live)()


def latents_live():
    """The Latents tab, live while Play runs: the views follow the model as it trains (live_cycle)."""
    run = ss.run
    live_cycle("latents", "the Latents tab's views", lambda views: show_latents(run, views),
               lambda **when: latent_views(run, **when), SLOW_CYCLE)


def latent_views(run, paced, make_due):
    """The Latents tab's figures of the run (made again when live.Paced says so while playing)."""
    paced_views = ss.setdefault("latents_paced", live.Paced())
    return paced_views.get((id(run), run.generation), run.iteration, lambda: make_latent_views(run), paced, make_due)


def make_latent_views(run):
    view = run.latents(2000)  # encoding can find a breakdown too: the run steps back and pauses itself
    stages = run.stages(600)
    inside = run.funnel(800, 80)
    funnel_stage = next((s for s in stages if s.log_p_dropped is not None), None)
    return {
        "step": run.iteration, "ks": view.ks, "histogram": iv.latent_histogram(view.z, view.ks),
        "stages": iv.layer_small_multiples(stages),
        "funnel": None if inside is None else iv.funnel_conditional(inside.z_axis, inside.x_minus_axis, inside.log_p,
                                                                    inside.z, inside.x_minus),
        "log_p_dropped": None if funnel_stage is None else funnel_stage.log_p_dropped,
    }


def show_latents(run, views):
    show_run_message(run)
    if views is None:
        return
    live_note = " They follow the training live (Pause is on the Train tab)." if ss.running else ""
    st.markdown(f"A flow maps data to a {term('latent')} that should be **N(0, 1)**. "
                f"Here the data are pushed through the model at iteration {views['step']:,}.{live_note}",
                unsafe_allow_html=True)
    left, right = st.columns([2, 1])
    left.plotly_chart(views["histogram"], key="latent_hist")
    with right:
        for i, ks in enumerate(views["ks"]):
            label = "KS distance to N(0, 1)" + (f", z{i + 1}" if len(views["ks"]) > 1 else "")
            st.metric(label, f"{ks:.3f}")
        st.caption("The Kolmogorov–Smirnov distance: the largest gap between the encoded data's "
                   "cumulative distribution and N(0, 1)'s. With 2,000 points, about 0.03 is noise.")
    st.subheader("What each layer does")
    st.caption("The same points after each layer, coloured by their angle in the data, so you can "
               "follow them. A funnel's output is one-dimensional: drawn as a strip (height is jitter).")
    st.plotly_chart(views["stages"], key="stages")
    st.subheader("Inside the funnel")
    if views["funnel"] is None:
        st.info("NSF keeps both dimensions, so it has no funnel. Choose F-NSF in the sidebar to see one.")
        return
    st.markdown(
        "The funnel splits its input into the dropped coordinate **x₋** and the kept one **x₊**; "
        "F⁻¹ maps x₊ (given x₋) to **z**. Below, each data point at (z, x₋), over the learned "
        "decoder **p_φ(x₋ | z)**: where the points sit in bright regions, the funnel can put back what it dropped."
    )
    if views["log_p_dropped"] is not None:
        st.caption(f"Mean log p_φ(x₋ | z) over the data: {views['log_p_dropped']:.3f} nats.")
    st.plotly_chart(views["funnel"], key="funnel")


# -- Watch it move tab ---------------------------------------------------------------------------
FLOW_POINTS = 400  # points in the animation: smooth in a browser, about 0.05 s to compute


def watch_tab(run):
    """Points travel from N(0, 1) through each layer to the data and back (funnelkit.viz.flow_path);
    the browser plays the frames, so watching costs the server nothing."""
    from funnelkit.viz.flow_animation import flow_animation_figure
    from funnelkit.viz.flow_path import round_trip

    funnel = "the funnel draws x₋ from p_φ going out and ignores it coming back."
    bijective = "every NSF layer is a bijection, so the way back retraces the way out."
    st.caption("Play, or drag the slider, and follow a colour from N(0, 1) to the data and back: "
               + (funnel if run.settings.model == "f-nsf" else bijective))
    try:
        path = round_trip(run.model, FLOW_POINTS, seed=run.settings.seed)
    except recovery.BREAKDOWN_ERRORS as error:  # a diverged model: say so, with a way back
        st.warning(f"This model cannot be drawn now ({recovery.describe(error)}). Press Reset or Load pretrained on the "
                   "Train tab.", icon=":material/warning:")
        return
    title = f"{MODEL_NAMES[run.settings.model]}, {DATASET_NAMES[run.settings.dataset]}, iteration {run.iteration:,}"
    st.plotly_chart(flow_animation_figure(path, title=title), key="flow_animation", config=PLOT_CONFIG)


# -- How it works tab ----------------------------------------------------------------------------
def how_tab(run):
    st.markdown(
        "A **funnel** layer reduces the dimension and still gives an exact likelihood. Split x into "
        "x₋ = x₁:ₘ₋₁ (dropped) and x₊ = xₘ:ₙ (kept). A conditional bijection maps the kept part to "
        "z = F⁻¹(x₊) given x₋, and a decoder p_φ models what was dropped. The layer's contribution "
        "to log p(x) is (paper Eq. 6):"
    )
    st.latex(
        r"\mathcal{V}(\mathbf{x}) = \log p_{\phi}\!\left(\mathbf{x}_{1:m-1} \,\middle|\, "
        r"F^{-1}_{\theta(\mathbf{x}_{1:m-1}, \mathbf{x}_{m:n})}(\mathbf{x}_{m:n})\right)"
        r" + \log\left|\det J_{\theta}(\mathbf{x}_{m:n})\right|"
    )
    st.latex(r"\log p(\mathbf{x}) = \log \mathcal{N}(\mathbf{z}_L; 0, I) + \sum_{l} \mathcal{V}_l(\mathbf{x})")
    st.markdown(
        "- **log |det J_θ|**: how F⁻¹ stretches the kept coordinates, as in any flow.\n"
        "- **log p_φ(x₋ | z)**: the likelihood of the dropped coordinates given z, a reconstruction "
        "term that penalises moving away from invertibility. It replaces the Jacobian of the part "
        "a bijection would have kept.\n"
        "- **log N(z; 0, I)**: the base density of the final, smaller latent.\n"
        "- For a bijective layer (a spline, a permutation) only log |det J| is there. The sum is exact: "
        "no bound, no sampling. Sampling runs the layer backwards: x₋ ~ p_φ(· | z), then x₊ = F(z | x₋)."
    )
    st.subheader("Eq. 6 in numbers, for your model")
    live_style()
    st.fragment(run_every=SLOW_CYCLE / 2 if ss.running else None)(eq6_live)()
    st.subheader("Notebooks")
    st.markdown("The derivation and every experiment, step by step, in Jupyter (from the repository root):")
    for i, (path, what) in enumerate(NOTEBOOKS.items()):
        left, right = st.columns([4, 1])
        left.markdown(f"**`{path}`**: {what}.  \n`jupyter lab {path}`")
        notebook = REPO_ROOT / path
        if notebook.is_file():
            right.download_button("Download", notebook.read_bytes(), file_name=notebook.name,
                                  mime="application/x-ipynb+json", key=f"notebook_{i}", on_click="ignore")


def eq6_live():
    """The Eq. 6 table of the How it works tab, live while Play runs (live_cycle)."""
    run = ss.run
    live_cycle("eq6", "the Eq. 6 table", lambda terms: show_eq6(run, terms), lambda **when: eq6_terms(run, **when),
               SLOW_CYCLE)


def eq6_terms(run, paced, make_due):
    paced_terms = ss.setdefault("eq6_paced", live.Paced())
    return paced_terms.get((id(run), run.generation), run.iteration,
                           lambda: (run.iteration, *run.layer_terms(run.data(256))), paced, make_due)


def show_eq6(run, terms):
    show_run_message(run)
    if terms is None:
        return
    step, rows, summed, total = terms
    st.dataframe(rows, hide_index=True, key="eq6_table")
    st.markdown(
        f"Mean over 256 data points at iteration {step:,}: the terms add up to **{summed:.4f}** nats; "
        f"`model.log_prob(x)` gives **{total:.4f}**." + (" The table follows the training live." if ss.running else "")
    )


# -- Samples and Compare tabs: image models at a temperature ------------------------------------
TEMPERING = {
    "base": "Only the base noise is tempered: z ~ N(0, T²I). Each funnel's decoder p_φ, and the VAE's decoder, "
            "sample at T = 1, as in the paper's code.",
    "all": "The base noise and the decoders' noise are tempered: z ~ N(0, T²I), and each funnel's decoder p_φ "
           "(and the VAE's) draws mean + T·σ·ε.",
    "mean": "The base noise is tempered, z ~ N(0, T²I), and each funnel's decoder p_φ (and the VAE's) gives its "
            "mean: no decoder noise.",
}


def init_samples():
    """Once per session: the image settings from the URL (bad values become messages)."""
    if "samples" not in ss:
        ss.samples, ss.sample_problems = gallery.SampleSettings.from_query(st.query_params.to_dict())


def set_samples(**changes):
    ss.samples = replace(ss.samples, **changes)
    ss.sample_problems = []  # the user has moved on from the link


def on_run():
    set_samples(run=ss.image_run)


def on_compare():
    set_samples(compare=ss.compare_set)


def on_preset():
    if ss.temperature_preset is not None:  # clicking the chosen preset again unselects it: keep T
        set_samples(temperature=ss.temperature_preset)


def on_slider():
    set_samples(temperature=round(ss.temperature, 2))


def on_temper():
    set_samples(temper=ss.temper)


def on_n():
    set_samples(samples=int(ss.n_samples))


def on_seed():
    set_samples(sample_seed=int(ss.sample_seed))


def new_seed():
    set_samples(sample_seed=random.randrange(100_000))


def mirror(key, value):
    """Show the session's value in the widget ``key`` (its state is dropped while its tab is shut)."""
    ss[key] = value


def sample_controls():
    """Temperature presets and slider (one value), number of samples, seed: shared by both tabs."""
    s = ss.samples
    low, high = gallery.LIMITS["temperature"]
    cols = st.columns([2.2, 2.8, 1.2, 1.3, 1.2], vertical_alignment="bottom")
    mirror("temperature_preset", s.temperature if s.temperature in gallery.PRESET_TEMPERATURES else None)
    cols[0].segmented_control("The paper's temperatures", gallery.PRESET_TEMPERATURES, key="temperature_preset",
                              format_func=lambda t: f"T = {t:g}", on_change=on_preset,
                              help="Fig. 4 of the paper samples at T = 0.5, 0.75 and 1.")
    mirror("temperature", s.temperature)
    cols[1].slider("Temperature T", low, high, step=0.05, format="%.2f", key="temperature", on_change=on_slider,
                   help=GLOSSARY["temperature"])
    low, high = gallery.LIMITS["samples"]
    mirror("n_samples", s.samples)
    cols[2].number_input("Samples", low, high, step=1, key="n_samples", on_change=on_n)
    low, high = gallery.LIMITS["sample_seed"]
    mirror("sample_seed", s.sample_seed)
    cols[3].number_input("Sample seed", low, high, step=1, key="sample_seed", on_change=on_seed,
                         help="The same seed, temperature and number give the same grid (on one device).")
    cols[4].button("New seed", key="new_seed", on_click=new_seed, icon=":material/casino:", width="stretch")
    mirror("temper", s.temper)
    st.radio("What T tempers", gallery.TEMPER_MODES, key="temper", format_func=gallery.TEMPER_LABELS.get,
             on_change=on_temper, horizontal=True, help=gallery.RANDOMNESS)


@st.cache_resource(max_entries=16, show_spinner="Loading the model…")
def load_image_model(path, stamp, device):
    """A model from its run folder, loaded once per (folder, checkpoint version, device) and shared:
    eval mode, only sampled from."""
    return fk.load(path, device=device)


@st.cache_data(max_entries=128, show_spinner=False)
def grid_pngs(path, stamp, device, n, temperature, seed, temper):
    """(PNG at the model's size, PNG enlarged for the screen, seconds the draw took)."""
    model = load_image_model(path, stamp, device)
    start = time.perf_counter()
    grid = gallery.sample_grid(model, n, temperature, seed, temper=temper)
    seconds = time.perf_counter() - start
    return gallery.png_bytes(grid), gallery.png_bytes(grid, gallery.display_factor(grid)), seconds


def draw(run, device):
    """The run's grid for the session's settings, or None after showing why it cannot be drawn."""
    s = ss.samples
    try:
        return grid_pngs(str(run.path), run.stamp, str(device), s.samples, s.temperature, s.sample_seed, s.temper)
    except (ValueError, OSError, RuntimeError) as error:
        st.error(f"Could not load or sample **{run.key}**: {error}  \nMake the run again with "
                 f"`{run.remake}` (or delete its folder).")
        return None


@st.cache_data(max_entries=256, show_spinner="Measuring the digit FID…")
def digit_quality_line(path, stamp, device, temperature, temper, seed, n):
    """The kit's digit metric of ``n`` samples at these settings, as one line (cached: the page stays fast)."""
    model = load_image_model(path, stamp, device)
    return gallery.digit_quality(model, temperature, temper, seed, n).line


def quality_caption(run, device, where=st, measure=True):
    """Under a grid: the digit FID of the run's samples at the session's settings (``measure``), and
    how it was trained."""
    s = ss.samples
    lines = []
    if measure and metric_samples() > 0:
        if not gallery.measures_digits(run):
            lines.append(gallery.not_measured_line(run))
        else:
            try:
                lines.append(digit_quality_line(str(run.path), run.stamp, str(device), s.temperature, s.temper,
                                                s.sample_seed, metric_samples()))
            except (ValueError, OSError, RuntimeError) as error:  # e.g. the classifier file is missing
                lines.append(f"No digit FID: {error}")
    if run.training_line:
        lines.append(run.training_line)
    if lines:
        where.caption("  \n".join(lines))


def found_runs():
    """The image runs, with the link's and the runs' problems shown; None (after a message) if none."""
    found = gallery.find_image_runs()
    for problem in ss.sample_problems:
        st.error(problem)
    for problem in found.problems:
        st.error(f"A run was skipped: {problem}")
    if not found.runs:
        folders = ", ".join(f"`{f}`" for f in found.folders) or "none"
        st.info(f"No image runs were found (searched: {folders}). The kit ships classroom and quick MNIST models in "
                f"`data/runs`; to make your own, run from the repository root  \n`{gallery.MAKE_RUNS[0]}`  \n"
                f"(MNIST 5-bit NSF, F-NSF and VAE; a few minutes on a CPU), or on a GPU with CIFAR-10  \n"
                f"`{gallery.MAKE_RUNS[1]}`.")
        return None
    return found


def choose(key, options, default, name):
    """``key`` if it is among ``options``, else ``default`` (a link's unknown name becomes a message)."""
    if key is None or key in options:
        return key if key is not None else default
    st.error(f"The link's {name}={key!r} is not among the runs found here; showing {default!r} instead.")
    return default


def run_facts(run):
    bound = "" if run.exact else f" (its {term('ELBO')}: a bound)"
    lines = [f"**{gallery.MODEL_NAMES.get(run.model, run.model)}**, {term('latent')} size **{run.latent_dim:,}** of "
             f"{run.data_dim:,}; log p(x) is {'exact' if run.exact else 'a bound (' + term('ELBO') + ')'}."]
    if run.bpd is not None:
        lines.append(f"Test {term('bits/dim')}{bound}: **{run.bpd:.3f} ± {run.bpd_2se:.3f}** (two standard errors).")
    if run.parameters:
        lines.append(f"{run.parameters:,} parameters.")
    if not run.training_line:
        lines.append(f"Data: {with_terms(run.data_note)}.")
    lines.append(f"Run: `{shown(run.path)}` ({run.source}).")
    return "  \n".join(lines)


def samples_tab(device):
    init_samples()
    found = found_runs()
    if found is None:
        return
    keys = [r.key for r in found.runs]
    run = found.get(choose(ss.samples.run, keys, found.default().key, "run"))
    if ss.samples.run != run.key:
        ss.samples = replace(ss.samples, run=run.key)
    labels = {r.key: r.label for r in found.runs}
    mirror("image_run", run.key)
    st.selectbox("Image model", keys, key="image_run", format_func=labels.get, on_change=on_run,
                 help="Shipped: the classroom models (tens of CPU minutes each) and the quick ones (two minutes) "
                      "on the kit's offline MNIST. Yours: runs/ (CIFAR-10 or ImageNet64 once you have trained them "
                      "with the command line).")
    sample_controls()
    write_url(ss.samples)
    drawn = draw(run, device)
    if drawn is None:
        return
    png, shown, seconds = drawn
    ss.sample_png = png
    s = ss.samples
    left, right = st.columns([3, 2])
    left.image(shown, caption=f"{s.samples} samples at T = {s.temperature:g} ({gallery.TEMPER_LABELS[s.temper]}), "
                              f"seed {s.sample_seed}", output_format="PNG")
    quality_caption(run, device, left)
    left.download_button("Download PNG", png, file_name=gallery.file_name(run, s), mime="image/png",
                         key="download_grid", on_click="ignore", icon=":material/download:")
    right.markdown(run_facts(run), unsafe_allow_html=True)
    right.caption(f"{TEMPERING[s.temper]} Drawn on **{device_name(device)}** in {1000 * seconds:.0f} ms. The "
                  "download is the grid at the model's resolution (one pixel per pixel); pixels are floor(u)·2^(8−bits).")
    right.caption(f"**Where the randomness comes from.** {gallery.RANDOMNESS}")


def compare_tab(device):
    init_samples()
    found = found_runs()
    if found is None:
        return
    sets = found.comparisons()
    keys = [c.key for c in sets]
    comparison = gallery.find_comparison(sets, choose(ss.samples.compare, keys, keys[0], "compare"))
    if ss.samples.compare != comparison.key:
        ss.samples = replace(ss.samples, compare=comparison.key)
    titles = {c.key: c.title for c in sets}
    mirror("compare_set", comparison.key)
    st.selectbox("Compare", keys, key="compare_set", format_func=titles.get, on_change=on_compare,
                 help="Runs of one data set, bit depth and latent size; NSF keeps every dimension.")
    sample_controls()
    write_url(ss.samples)
    s = ss.samples
    st.caption(f"The same temperature T = {s.temperature:g} ({gallery.TEMPER_LABELS[s.temper]}), seed "
               f"{s.sample_seed} and {s.samples} samples for each model, on {device_name(device)}. "
               f"{TEMPERING[s.temper]}"
               + (" NSF has no decoders: every mode draws it the same." if s.temper != "base"
                  and any(r.model == "nsf" for r in comparison.runs) else ""))
    columns = st.columns(len(comparison.runs))
    for column, run in zip(columns, comparison.runs):
        with column:
            bound = "" if run.exact else f" ({term('ELBO')}: a bound)"
            st.markdown(f"**{gallery.MODEL_NAMES.get(run.model, run.model)}** · {term('latent')} "
                        f"{run.latent_dim:,}", unsafe_allow_html=True)
            drawn = draw(run, device)
            if drawn is not None:
                st.image(drawn[1], width="stretch", output_format="PNG")
            quality_caption(run, device, measure=drawn is not None)  # how it was trained, drawn or not
            if run.bpd is not None:
                st.caption(f"{term('bits/dim')}{bound}: {run.bpd:.3f} ± {run.bpd_2se:.3f}", unsafe_allow_html=True)
    st.subheader("Metrics, from each run's metrics.json")
    st.dataframe(gallery.metrics_rows(comparison.runs), hide_index=True, key="compare_metrics", column_config={
        "bits/dim": st.column_config.NumberColumn(format="%.3f", help=GLOSSARY["bits/dim"]),
        "± 2 s.e.": st.column_config.NumberColumn(format="%.3f", help="two standard errors of the mean"),
        "training seconds": st.column_config.NumberColumn(format="%.0f"),
        "parameters": st.column_config.NumberColumn(format="localized"),
        "training steps": st.column_config.NumberColumn(format="localized"),
    })
    notes = [f"{term('bits/dim', 'Bits/dim')}: lower is better. A VAE's are from its {term('ELBO')}, an upper "
             "bound on its bits/dim: not exact."]
    if any(r.stand_in for r in comparison.runs):
        notes.append(f"Data: {with_terms(comparison.runs[0].data_note)}: compare the models with each other, not "
                     "with the paper's numbers.")
    if any(r.experiment == "anomaly" for r in comparison.runs):
        notes.append("These are Table 4's anomaly models (MNIST 8-bit): their bits/dim are on held-out MNIST.")
    st.caption("  \n".join(notes), unsafe_allow_html=True)


def with_terms(text):
    """``text`` with the first "stand-in" in it explained on hover."""
    return text.replace("stand-in", term("stand-in"), 1)


# -- classroom rooms: ?room=NAME, one run that every page of the room watches --------------------
# Seconds between two redraws of a room's charts on every page of the room: 2.5 a second, so that a page keeps
# at least 2 when the server is a little late (the room trains in a process of its own, funnelkit.app.room_process;
# 30 pages at 2.5 redraws a second took 0.69 of the server's core, 8 ms a redraw: benchmarks/results/room.md).
ROOM_EVERY = 0.4
ROOM_WAIT_EVERY = 2.0  # a page waiting for its room to open looks again this often
ROOM_BUSY = 2.0  # a page whose redraws come this many times ROOM_EVERY apart (or more) says the server is busy
ROOM_GAP_KEPT = 10.0  # seconds: a longer gap between two redraws (a hidden tab, a closed laptop) is not a busy server


def room_gap(now):
    """The time between the starts of this page's redraws, smoothed (half the last gap, half the ones before),
    in seconds; called at the start of each redraw. It only measures: the fragment's timer stays at ROOM_EVERY.
    Streamlit neither stops a fragment's redraw for its next timer tick nor keeps more than one rerun of it
    waiting, so on a busy server a page simply redraws as soon as its last redraw is done; changing the timer
    would need a rerun of the whole page, which is more work for a server that is already late."""
    last = ss.get("room_redrawn_at")
    gap = ss.get("room_gap", ROOM_EVERY)
    if last is not None and 0 < now - last <= ROOM_GAP_KEPT:
        gap = 0.5 * gap + 0.5 * (now - last)
    ss.room_redrawn_at, ss.room_gap = now, gap
    return gap


def room_device():
    """The device a new room trains on: FUNNELKIT_APP_DEVICE, or auto when that is not usable here."""
    try:
        return fk.pick_device(os.environ.get("FUNNELKIT_APP_DEVICE", "auto"))
    except ValueError:
        return fk.pick_device("auto")


def open_room(name):
    """The Open button: a new room with the link's settings; the page's link becomes the presenter link."""
    settings, _ = live_settings.LiveSettings.from_query(st.query_params.to_dict())
    try:
        room = classroom.ROOMS.open(name, settings, device=room_device(), resolution=GRID, n_samples=N_SAMPLES)
    except (classroom.RoomError, ValueError, OSError, RuntimeError) as error:
        ss.room_error = f"Could not open room {name}: {error}"
        return
    ss.room_error = None
    st.query_params["token"] = room.token


def room_action(name, action):
    """A presenter button (``action``: play, pause, step, reset, load_pretrained) on room ``name``."""
    room = classroom.ROOMS.get(name)
    if room is None:
        ss.room_error = f"Room {name} is no longer open."
        return
    try:
        getattr(room, action)(st.query_params.get("token"))
        ss.room_error = None
    except (classroom.NotPresenter, classroom.RoomError, ValueError, OSError) as error:
        ss.room_error = f"{action.replace('_', ' ').capitalize()} did not work: {error}"


def apply_room_settings(name):
    """The presenter's settings form: the room's run goes on with the chosen dataset, model and rate."""
    room = classroom.ROOMS.get(name)
    if room is None:
        ss.room_error = f"Room {name} is no longer open."
        return
    try:
        settings = replace(room.snapshot().settings, dataset=ss.room_dataset, model=ss.room_model, lr=float(ss.room_lr))
        room.apply(st.query_params.get("token"), settings)
        ss.room_error = None
    except (classroom.NotPresenter, classroom.RoomError, ValueError, OSError) as error:
        ss.room_error = f"The settings were not applied: {error}"


def room_links(name, token):
    """The viewer link and the presenter link, each with a copy button (the sidebar; an expander with ?present=1)."""
    base = (st.context.url or "").split("?")[0]
    viewer = f"{base}?room={name}"
    where = st.expander("Links of this room") if PRESENT else st.sidebar
    with where:
        st.markdown("**Viewer link**: give it to the room (no controls).")
        st.code(viewer, language=None)
        st.markdown("**Presenter link**: yours alone; it controls the room.")
        st.code(f"{viewer}&token={token}", language=None)


def room_settings_form(name, settings):
    """The presenter's sidebar: dataset, model and learning rate of the room's run."""
    with st.sidebar.form("room_settings", border=False):
        st.subheader("The room's run")
        st.selectbox("Dataset", live_settings.DATASETS, index=live_settings.DATASETS.index(settings.dataset), key="room_dataset",
                     format_func=DATASET_NAMES.get)
        st.radio("Model", live_settings.MODELS, index=live_settings.MODELS.index(settings.model), key="room_model",
                 format_func=MODEL_NAMES.get)
        low, high = live_settings.LIMITS["lr"]
        st.number_input("Learning rate", low, high, value=settings.lr, step=1e-4, format="%.5f", key="room_lr")
        st.form_submit_button("Apply to the room", on_click=apply_room_settings, args=(name,))
        st.caption("A new dataset or model starts a fresh model; a new learning rate applies to the running one.")


def room_controls(room, token):
    """Play, Pause, Step, Reset and Load pretrained for the presenter, and the room's links and settings."""
    snap = room.snapshot()
    ss.room_shown_playing = snap.playing
    cols = st.columns([1, 1, 1, 1, 1.5, 3])
    cols[0].button("Play", key="room_play", on_click=room_action, args=(room.name, "play"), disabled=snap.playing,
                   type="primary", width="stretch", icon=":material/play_arrow:")
    cols[1].button("Pause", key="room_pause", on_click=room_action, args=(room.name, "pause"),
                   disabled=not snap.playing, width="stretch", icon=":material/pause:")
    cols[2].button("Step", key="room_step", on_click=room_action, args=(room.name, "step"), disabled=snap.playing,
                   width="stretch", icon=":material/skip_next:", help="One training iteration for the whole room.")
    cols[3].button("Reset", key="room_reset", on_click=room_action, args=(room.name, "reset"), width="stretch",
                   icon=":material/restart_alt:", help="A fresh, untrained model for the whole room.")
    if snap.settings.pretrained_path() is not None:
        cols[4].button("Load pretrained", key="room_load_pretrained", on_click=room_action,
                       args=(room.name, "load_pretrained"), width="stretch",
                       help="The model shipped in data/runs/four-circles-quick, trained with the quick preset.")
    cols[5].caption(f"You present room **{room.name}**: your buttons drive the training every page of the room "
                    "shows.")
    room_links(room.name, token)
    room_settings_form(room.name, snap.settings)


@st.cache_resource(show_spinner=False)
def _room_frames():
    """The latest frame of each room (room_id -> (made at, snapshot, plots)) and the lock of building one,
    shared by all sessions (app.py's own globals are made again on every run)."""
    return {"frames": {}, "building": threading.Lock()}


def room_frame(room, viewer):
    """The snapshot of ``room`` to draw now and its three plots. One frame is built at a time, by whichever
    page asks first once the last is older than ROOM_EVERY (while the room trains) or shows an older step
    (while paused); the other pages meanwhile show the last frame, so that every page of the room shows the
    same moment. Building the plots costs about 2 ms, once per frame for all pages."""
    shared = _room_frames()
    snap = room.snapshot(viewer=viewer)
    kept = shared["frames"].get(snap.room_id)
    if kept is not None:
        made_at, kept_snap, plots = kept
        current = kept_snap.version == snap.version or (snap.playing and time.monotonic() - made_at < ROOM_EVERY)
        if current or not shared["building"].acquire(blocking=False):
            return kept_snap, plots  # current enough, or another page is building the next frame
    else:
        shared["building"].acquire()
    try:
        density, samples = picture_plots(snap.pictures)
        loss = cp.loss_plot(snap.steps, snap.losses, snap.reference, window=LOSS_WINDOW, max_points=LOSS_POINTS,
                            height=PLOT_HEIGHT)
        kept_frames = shared["frames"]
        kept_frames[snap.room_id] = (time.monotonic(), snap, (density, samples, loss))
        while len(kept_frames) > 2 * classroom.MAX_ROOMS:  # frames of rooms closed long ago are forgotten
            kept_frames.pop(min(kept_frames, key=lambda k: kept_frames[k][0]))
        return snap, (density, samples, loss)
    finally:
        shared["building"].release()


def room_view(name, presenter):
    """Redrawn every ROOM_EVERY seconds on each page of the room: the latest snapshot, nothing trained here."""
    room = classroom.ROOMS.get(name)
    if room is None:
        st.warning(f"Room {name} was closed (idle for {classroom.IDLE_DROP_S / 3600:g} h, or the server restarted). "
                   "Reload the page to open it again.")
        return
    gap = room_gap(time.perf_counter())
    snap, plots = room_frame(room, ss.setdefault("room_viewer", os.urandom(8).hex()))
    if presenter and snap.playing != ss.get("room_shown_playing"):
        st.rerun(scope="app")  # the run paused itself (a divergence): Play comes back
    if snap.message:
        st.warning(snap.message, icon=":material/warning:")
    run_numbers(snap.iteration, snap.last_loss, snap.reference, snap.steps_per_second)
    state = "Training…" if snap.playing else "Paused."
    s = snap.settings
    lines = [f"{state} {DATASET_NAMES.get(s.dataset, s.dataset)}, {MODEL_NAMES.get(s.model, s.model)}; model: "
             f"{snap.source}; learning rate {snap.lr:g}; {room.watching():,} page(s) watching."]
    shared = classroom.shared_line(classroom.ACTIVITY.count())
    if shared:
        lines.append(shared)
    if gap >= ROOM_BUSY * ROOM_EVERY:
        lines.append(f"The server is busy: this page redraws about every {gap:.1f} s.")
    st.caption("  \n".join(lines))
    plot_row(plots, ("room_density", "room_samples", "room_loss"))


def wait_for_room(name):
    """On a page waiting for its room: show the room as soon as the presenter opens it."""
    if classroom.ROOMS.get(name) is not None:
        st.rerun(scope="app")


def room_not_open(name, token):
    if token:
        st.warning(f"Room **{name}** is not open on this server: a room closes after "
                   f"{classroom.IDLE_DROP_S / 3600:g} h without viewers, and a restart closes every room. Open it "
                   "again below; you get a new presenter link.")
    else:
        st.info(f"Room **{name}** is not open yet. This page shows its training as soon as the presenter opens it.")
        st.fragment(run_every=ROOM_WAIT_EVERY)(wait_for_room)(name)
    with st.expander("Are you the presenter? Open the room", expanded=bool(token)):
        st.caption("Opening makes a presenter link with a secret token: keep it, and give the room the viewer "
                   "link. The dataset and model come from this link (?room=NAME&dataset=two-moons...).")
        st.button(f"Open room {name}", key="open_room", on_click=open_room, args=(name,), type="primary")


def room_page(raw_name):
    """``?room=NAME``: the room's run for every page; its controls only with the presenter's ``&token=``."""
    page_style()
    plot_script()
    try:
        name = classroom.check_room_name(raw_name)
    except classroom.RoomError as error:
        st.error(f"This link's room cannot be shown: {error}. Remove room= from the link for a page of your own.")
        return
    st.markdown(f"#### Funnels, live: room {name}")
    if ss.get("room_error"):
        st.error(ss.room_error)
    token = st.query_params.get("token")
    room = classroom.ROOMS.get(name)
    if room is None:
        room_not_open(name, token)
        return
    presenter = token is not None and room.is_presenter(token)
    if presenter:
        room_controls(room, token)
    else:
        if token is not None:
            st.error(f"This link's token is not the presenter token of room {name}, so it has no controls: you are "
                     "watching. The presenter's link ends in &token=...; ask the presenter for it.")
        st.caption(f"Watching room **{name}**, the presenter controls it. The charts follow the training live.")
    st.fragment(run_every=ROOM_EVERY)(room_view)(name, presenter)


# -- page ----------------------------------------------------------------------------------------
def main():
    keep_collections_short()
    room_name = st.query_params.get("room")
    if room_name is not None:  # a classroom room: its own page (funnelkit.app.room)
        room_page(room_name)
        return
    try:
        own_page()
    finally:  # after the plots (it needs torch), and also when a message stopped the page
        sidebar_footer()


def own_page():
    """A page of one's own: the sidebar's settings, the title and the tab shown."""
    init_session()
    page_style()
    plot_script()
    sidebar()
    st.markdown("#### Funnels, live: exact maximum likelihood with dimensionality reduction",
                help="Klein, Raine, Pina-Otey, Voloshynovskiy, Golling. Train a funnel on a 2-D toy, look inside "
                     "it, sample image models at a temperature, compare funnel, NSF and VAE, read Eq. 6.")
    for problem in ss.url_problems:
        st.error(problem)
    try:
        settings = current_settings()
    except ValueError as error:
        settings_failed(error)
        st.stop()
    write_url(settings)
    tabs = st.tabs(TABS, key="tab", bind="query-params")
    renders = {"Train": train_tab, "Latents": latents_tab, "Samples": samples_tab, "Compare": compare_tab,
               "How it works": how_tab, "Watch it move": watch_tab}
    for label, tab in zip(TABS, tabs):
        if not tab.open:
            continue  # lazy tabs: the 2-D run and the image models are made only where they are shown
        with tab:
            view = opening(settings) if label == "Train" else None
            if view is not None:  # a new session on the shipped model: draw it; the run is built on first use
                opening_tab(view)
            elif label in LIVE_TABS:
                try:
                    run = current_run(settings)
                except Exception as error:  # a model that cannot be built: a message and a way back
                    settings_failed(error)
                    st.stop()
                renders[label](run)
            else:
                torch_ready()
                renders[label](fk.pick_device(ss.device_choice))


main()
