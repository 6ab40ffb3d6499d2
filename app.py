"""funnelkit dashboard: train a funnel on 2-D toys live, look inside it, sample image models at a
temperature, compare funnel, NSF and VAE, read Eq. 6.

    streamlit run app.py

Thin wiring only: the state of a run is ``funnelkit.live.LiveRun``, the figures are
``funnelkit.viz.interactive``, and the image runs, their sample grids and metrics are
``funnelkit.gallery``. Settings live in the URL (``?dataset=two-moons&hidden=32``,
``?tab=Samples&temperature=0.5&sample_seed=3``), so a teacher can share a link that opens the same view.
``?present=1`` is the presentation mode for a projector: larger text, no sidebar, no toolbar.

Environment: ``FUNNELKIT_APP_GRID`` (density grid resolution, default 100),
``FUNNELKIT_APP_SAMPLES`` (samples drawn, default 1000), ``FUNNELKIT_APP_DEVICE``
(auto | cpu | cuda | mps, default auto), ``FUNNELKIT_APP_THREADS`` (torch CPU threads, default 1;
0 leaves torch's default), ``FUNNELKIT_APP_RUNS`` (folders searched for image runs, separated by
``os.pathsep``; default data/runs and runs/), ``FUNNELKIT_APP_METRIC_SAMPLES`` (samples behind the
digit FID under each MNIST grid, default 500; 0 shows no FID).
"""

import os
import platform
import random
import time
from dataclasses import replace

import streamlit as st
import torch

import funnelkit as fk
from funnelkit import gallery
from funnelkit import live
from funnelkit.checkpoints import versions
from funnelkit.paths import REPO_ROOT, shown
from funnelkit.viz import interactive as iv

GRID = int(os.environ.get("FUNNELKIT_APP_GRID", "100"))
N_SAMPLES = int(os.environ.get("FUNNELKIT_APP_SAMPLES", "1000"))
# Small 2-D flows train several times faster on one CPU thread than on many (thread overhead
# dominates such tiny operations, worse on a busy machine); FUNNELKIT_APP_THREADS overrides.
CPU_THREADS = int(os.environ.get("FUNNELKIT_APP_THREADS", "1"))
METRIC_SAMPLES = int(os.environ.get("FUNNELKIT_APP_METRIC_SAMPLES", str(gallery.METRIC_SAMPLES)))
TICK_SECONDS = 0.3  # training time per live tick: Pause answers within one tick
RUN_EVERY = 0.5  # seconds between live ticks
TABS = ["Train", "Latents", "Samples", "Compare", "How it works"]
LIVE_TABS = ("Train", "Latents", "How it works")  # the tabs that use the 2-D live run
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
TRAIN_CAPTIONS = (
    "Bright where the model puts probability: the bright shapes should sit on the red data points, and be sharp.",
    "Points drawn from the model (blue) over the data (grey): they should cover the data evenly, not the gaps.",
    "Loss per step (grey) and its mean (blue). It should fall towards the dashed line, the best any model can do.",
)

st.set_page_config(page_title="funnelkit: funnels live", page_icon="🌀", layout="wide")
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
    """
    if PRESENT:
        css += """
        html { font-size: 19px; }
        [data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
        [data-testid="stToolbar"], [data-testid="stHeader"], [data-testid="stDecoration"] { display: none; }
        [data-testid="stMainBlockContainer"] { padding-top: 0.8rem; }
        """
    st.html(f"<style>{css}</style>")
if CPU_THREADS > 0 and torch.get_num_threads() != CPU_THREADS:
    torch.set_num_threads(CPU_THREADS)


# -- state ---------------------------------------------------------------------------------------
def init_session():
    """Once per browser session: read the settings from the URL (bad values become messages)."""
    if "settings_ready" in ss:
        return
    settings, problems = live.LiveSettings.from_query(st.query_params.to_dict())
    for name, value in settings.to_dict().items():
        ss[name] = value
    choice = os.environ.get("FUNNELKIT_APP_DEVICE", "auto")
    try:
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
    values = {name: ss[name] for name in live.LiveSettings.__dataclass_fields__}
    return live.LiveSettings(**values)


def current_run(settings):
    """The session's LiveRun, created once and adapted when the settings change."""
    device = fk.pick_device(ss.get("device_choice", "auto"))
    if ss.get("run") is None:
        ss.run = live.LiveRun.create(settings, device=device, pretrained=True)
    elif ss.run.apply(settings, device) != "same":
        ss.url_problems = []  # the user has moved on from the link
        ss.train_error = None
    return ss.run


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
        st.caption("The 2-D model of the Train, Latents and How it works tabs.")
        st.selectbox("Dataset", live.DATASETS, key="dataset", format_func=DATASET_NAMES.get)
        st.radio("Model", live.MODELS, key="model", format_func=MODEL_NAMES.get,
                 help="F-NSF ends in a funnel layer (Eq. 6) that drops x₁; NSF keeps both dimensions.")
        low, high = live.LIMITS["hidden"]
        st.number_input("Hidden units", low, high, step=8, key="hidden", help="Width of each spline's MLP.")
        low, high = live.LIMITS["bins"]
        st.number_input("Spline bins", low, high, step=1, key="bins")
        low, high = live.LIMITS["lr"]
        st.number_input("Learning rate", low, high, step=1e-4, format="%.5f", key="lr",
                        help="Adam's step size. From about 0.3 up the splines often break down within a few "
                             "dozen steps: the run then goes back to its last good model and pauses, so you "
                             "can see what too large a step does.")
        low, high = live.LIMITS["batch"]
        st.number_input("Batch size", low, high, step=32, key="batch")
        low, high = live.LIMITS["seed"]
        st.number_input("Training seed", low, high, step=1, key="seed",
                        help="Initial weights and the training data stream.")
        st.caption("Dataset, model, sizes and seed start a fresh model; learning rate and batch size "
                   "apply to the running one. The page URL holds these settings: copy it to share.")


def device_name(device):
    return f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else str(device)


def sidebar_footer(device):
    with st.sidebar:
        st.divider()
        device = device_name(device)
        st.selectbox("Device", ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
                     + (["mps"] if torch.backends.mps.is_available() else []), key="device_choice",
                     help="auto: cuda if torch sees one, else mps, else cpu. Changing it starts a fresh model.")
        v = versions()
        st.caption(
            f"Running on **{device}**  \n"
            f"funnelkit {v['funnelkit']} · torch {v['torch']} · nflows {v['nflows']} · "
            f"streamlit {st.__version__} · Python {platform.python_version()}"
        )


# -- Train tab -----------------------------------------------------------------------------------
def train_tab(run):
    control_buttons(run.settings.pretrained_path() is not None)
    live_every = RUN_EVERY if ss.running else None
    st.fragment(run_every=live_every)(live_panel)()


def opening_tab(view):
    """The Train tab of a new session from the shipped model's :class:`funnelkit.live.Opening`. The
    session's LiveRun is built only when a button or another tab needs it: the first in a server
    process takes a second or two (torch's optimiser machinery loads), and the page is drawn before."""
    control_buttons(True)
    note = SHIPPED_NOTE.format(lr=view.lr) if view.lr == live.SHIPPED_CONTINUE_LR else ""
    show_panel(view.iteration, view.last_loss, view.reference, None, caption_line(view.source, note),
               f"{view.parameters:,} parameters on {fk.pick_device(ss.device_choice)}; learning rate {view.lr:g}.",
               train_figures(view.key, view.pictures), view.steps, view.losses)


def opening(settings):
    """The shipped model's opening view for ``settings``, or None (no checkpoint, or it cannot be read:
    the LiveRun then says why)."""
    if ss.get("run") is not None or ss.running:
        return None
    try:
        return live.opening_view(settings, fk.pick_device(ss.device_choice), GRID, N_SAMPLES)
    except (ValueError, OSError, RuntimeError, KeyError, ArithmeticError):
        return None


SHIPPED_NOTE = " Play goes on at learning rate {lr:g}, where its cosine schedule ended: no jump in the loss."


def caption_line(source, note):
    return f"{'Training…' if ss.running else 'Paused.'} Model: {source}.{note}"


def control_buttons(has_pretrained):
    cols = st.columns([1, 1, 1, 1, 1.5, 3])
    cols[0].button("Play", key="play", on_click=play, disabled=ss.running, type="primary", width="stretch",
                   icon=":material/play_arrow:")
    cols[1].button("Pause", key="pause", on_click=pause, disabled=not ss.running, width="stretch",
                   icon=":material/pause:")
    cols[2].button("Step", key="step", on_click=step, disabled=ss.running, width="stretch",
                   icon=":material/skip_next:",
                   help="One training iteration (one Adam step on a fresh batch).")
    cols[3].button("Reset", key="reset", on_click=reset, width="stretch", help="A fresh, untrained model.",
                   icon=":material/restart_alt:")
    if has_pretrained:
        cols[4].button("Load pretrained", key="load_pretrained", on_click=load_pretrained, width="stretch",
                       help="The model shipped in data/checkpoints, trained with the quick preset.")


def live_panel():
    """Redrawn on every tick while playing; trains about TICK_SECONDS first."""
    run = ss.run
    if ss.running:
        run.tick(TICK_SECONDS)
    # Drawing can find a breakdown too; either way the run steps back to a good model and pauses.
    pictures = run.pictures(GRID, N_SAMPLES, refresh_every="auto" if ss.running else 0.0)
    if ss.running and run.paused:
        ss.running = False
        st.rerun()  # the whole page, so that the timer stops and Play comes back
    show_run_message(run)
    note = ""
    if run.source.startswith("shipped") and run.lr == live.SHIPPED_CONTINUE_LR:
        note = SHIPPED_NOTE.format(lr=run.lr)
    help_line = (f"{run.model.num_parameters():,} parameters on {run.device}; learning rate {run.lr:g}. A shipped "
                 "model was trained with a cosine schedule that ends at 0: it goes on at a small rate until you "
                 "set one in the sidebar (at 0.003 its loss would first rise from 2.90 to about 3.0).")
    if ss.get("figures", (None,))[0] is not pictures:  # build plotly figures only for new pictures
        key = live.opening_key(run) if live.is_opening(run, pictures) else None
        ss.figures = (pictures, *train_figures(key, pictures))
    history = run.trainer.history
    show_panel(run.iteration, run.last_loss, run.reference_nll(), run.steps_per_second,
               caption_line(run.source, note), help_line, ss.figures[1:], history["step"], history["loss"])


def show_panel(iteration, last_loss, reference, speed, caption, caption_help, figures, steps, losses):
    """The numbers, the one-line state of the run, and the three plots with what to look at in each."""
    m = st.columns(4)
    m[0].metric("iteration", f"{iteration:,}")
    m[1].metric("loss (−log p, nats)", "–" if last_loss is None else f"{last_loss:.3f}",
                help="Mean of the last 20 steps of −log p(x), the negative log-likelihood the model is trained "
                     "to lower (exact for a funnel: no bound).")
    if reference is not None:
        m[2].metric("best possible (true density)", f"{reference:.3f}")
    m[3].metric("steps / s", "–" if speed is None else f"{speed:.1f}",
                help="Training speed: steps per second of training time (drawing excluded).")
    st.caption(caption, help=caption_help)
    c = st.columns([1.7, 1.0, 1.0])
    c[0].plotly_chart(figures[0], key="density", config=PLOT_CONFIG)
    c[1].plotly_chart(figures[1], key="samples", config=PLOT_CONFIG)
    c[2].plotly_chart(iv.loss_curve(steps, losses, reference, height=PLOT_HEIGHT, title="Training loss"), key="loss",
                      config=PLOT_CONFIG)
    for column, caption in zip(c, TRAIN_CAPTIONS):
        column.caption(caption)


@st.cache_resource(max_entries=32, show_spinner=False)
def _shared_figures(step, key, _pictures):
    """The density and samples figures of a shipped model's opening picture, built once per process and
    shared by every session (plotly figures are only read when drawn)."""
    return (iv.density_heatmap(_pictures.axis, _pictures.log_density, _pictures.data, height=PLOT_HEIGHT),
            iv.samples_scatter(_pictures.samples, _pictures.data, title="Samples", height=PLOT_HEIGHT))


def train_figures(opening_key, pictures):
    """The density and samples figures of ``pictures``; a shipped model's opening ones (``opening_key``
    not None) come from a process-wide cache, so a new page shows them without building them again."""
    if opening_key is not None:
        return _shared_figures(pictures.step, (opening_key, GRID, N_SAMPLES), pictures)
    return (iv.density_heatmap(pictures.axis, pictures.log_density, pictures.data, height=PLOT_HEIGHT),
            iv.samples_scatter(pictures.samples, pictures.data, title="Samples", height=PLOT_HEIGHT))


def show_run_message(run):
    """Why the run paused itself (a divergence it stepped back from), and any error of a button."""
    if run.message:
        st.warning(run.message, icon=":material/warning:")
    if ss.train_error:
        st.error(ss.train_error)


# -- Latents tab ---------------------------------------------------------------------------------
def latents_tab(run):
    st.markdown(f"A flow maps data to a {term('latent')} that should be **N(0, 1)**. "
                f"Here the data are pushed through the model at iteration {run.iteration:,}.",
                unsafe_allow_html=True)
    view = run.latents(2000)
    if run.message:  # encoding can find a divergence too (then the run stepped back)
        st.warning(run.message, icon=":material/warning:")
    left, right = st.columns([2, 1])
    left.plotly_chart(iv.latent_histogram(view.z, view.ks), key="latent_hist")
    with right:
        for i, ks in enumerate(view.ks):
            label = "KS distance to N(0, 1)" + (f", z{i + 1}" if len(view.ks) > 1 else "")
            st.metric(label, f"{ks:.3f}")
        st.caption("The Kolmogorov–Smirnov distance: the largest gap between the encoded data's "
                   "cumulative distribution and N(0, 1)'s. With 2,000 points, about 0.03 is noise.")
    st.subheader("What each layer does")
    st.caption("The same points after each layer, coloured by their angle in the data, so you can "
               "follow them. A funnel's output is one-dimensional: drawn as a strip (height is jitter).")
    stages = run.stages(600)
    st.plotly_chart(iv.layer_small_multiples(stages), key="stages")
    funnel_stage = next((s for s in stages if s.log_p_dropped is not None), None)
    st.subheader("Inside the funnel")
    view = run.funnel(800, 80)
    if view is None:
        st.info("NSF keeps both dimensions, so it has no funnel. Choose F-NSF in the sidebar to see one.")
        return
    st.markdown(
        "The funnel splits its input into the dropped coordinate **x₋** and the kept one **x₊**; "
        "F⁻¹ maps x₊ (given x₋) to **z**. Below, each data point at (z, x₋), over the learned "
        "decoder **p_φ(x₋ | z)**: where the points sit in bright regions, the funnel can put back what it dropped."
    )
    if funnel_stage is not None:
        st.caption(f"Mean log p_φ(x₋ | z) over the data: {funnel_stage.log_p_dropped:.3f} nats.")
    st.plotly_chart(iv.funnel_conditional(view.z_axis, view.x_minus_axis, view.log_p, view.z, view.x_minus),
                    key="funnel")


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
    x = run.data(256)
    rows, summed, total = run.layer_terms(x)
    st.dataframe(rows, hide_index=True)
    st.markdown(
        f"Mean over 256 data points: the terms add up to **{summed:.4f}** nats; "
        f"`model.log_prob(x)` gives **{total:.4f}**."
    )
    st.subheader("Notebooks")
    st.markdown("The derivation and every experiment, step by step, in Jupyter (from the repository root):")
    for i, (path, what) in enumerate(NOTEBOOKS.items()):
        left, right = st.columns([4, 1])
        left.markdown(f"**`{path}`**: {what}.  \n`jupyter lab {path}`")
        notebook = REPO_ROOT / path
        if notebook.is_file():
            right.download_button("Download", notebook.read_bytes(), file_name=notebook.name,
                                  mime="application/x-ipynb+json", key=f"notebook_{i}", on_click="ignore")


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


def quality_caption(run, device, where=st):
    """Under a grid: the digit FID of the run's samples at the session's settings, and how it was trained."""
    s = ss.samples
    lines = []
    if METRIC_SAMPLES > 0:
        if not gallery.measures_digits(run):
            lines.append(gallery.not_measured_line(run))
        else:
            try:
                lines.append(digit_quality_line(str(run.path), run.stamp, str(device), s.temperature, s.temper,
                                                s.sample_seed, METRIC_SAMPLES))
            except (ValueError, OSError, RuntimeError) as error:  # e.g. the classifier file is missing
                lines.append(f"No digit FID: {error}")
    if run.training_line:
        lines.append(run.training_line)
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
        st.info(f"No image runs were found (searched: {folders}). The kit ships quick MNIST models in "
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
                 help="Shipped: quick models on the kit's offline MNIST. Yours: runs/ (CIFAR-10 or ImageNet64 "
                      "once you have trained them with the command line).")
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
                quality_caption(run, device)
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


# -- page ----------------------------------------------------------------------------------------
def main():
    init_session()
    page_style()
    sidebar()
    st.markdown("#### Funnels, live: exact maximum likelihood with dimensionality reduction",
                help="Klein, Raine, Pina-Otey, Voloshynovskiy, Golling. Train a funnel on a 2-D toy, look inside "
                     "it, sample image models at a temperature, compare funnel, NSF and VAE, read Eq. 6.")
    for problem in ss.url_problems:
        st.error(problem)
    try:
        settings = current_settings()
    except ValueError as error:
        st.error(f"These settings cannot be used: {error}")
        st.stop()
    write_url(settings)
    device = fk.pick_device(ss.device_choice)
    sidebar_footer(device)
    tabs = st.tabs(TABS, key="tab", bind="query-params")
    renders = {"Train": train_tab, "Latents": latents_tab, "Samples": samples_tab, "Compare": compare_tab,
               "How it works": how_tab}
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
                except ValueError as error:
                    st.error(f"These settings cannot be used: {error}")
                    st.stop()
                renders[label](run)
            else:
                renders[label](device)


main()
