"""funnelkit dashboard: train a funnel on 2-D toys live, look inside it, read Eq. 6.

    streamlit run app.py

Thin wiring only: the state of a run is ``funnelkit.live.LiveRun`` and the figures are
``funnelkit.viz.interactive``. Settings live in the URL (``?dataset=two-moons&hidden=32``), so a
teacher can share a link that opens the same configuration.

Environment: ``FUNNELKIT_APP_GRID`` (density grid resolution, default 100),
``FUNNELKIT_APP_SAMPLES`` (samples drawn, default 1000), ``FUNNELKIT_APP_DEVICE``
(auto | cpu | cuda | mps, default auto), ``FUNNELKIT_APP_THREADS`` (torch CPU threads, default 1;
0 leaves torch's default).
"""

import os
import platform

import streamlit as st
import torch

import funnelkit as fk
from funnelkit import live
from funnelkit.checkpoints import versions
from funnelkit.paths import REPO_ROOT
from funnelkit.viz import interactive as iv

GRID = int(os.environ.get("FUNNELKIT_APP_GRID", "100"))
N_SAMPLES = int(os.environ.get("FUNNELKIT_APP_SAMPLES", "1000"))
# Small 2-D flows train several times faster on one CPU thread than on many (thread overhead
# dominates such tiny operations, worse on a busy machine); FUNNELKIT_APP_THREADS overrides.
CPU_THREADS = int(os.environ.get("FUNNELKIT_APP_THREADS", "1"))
TICK_SECONDS = 0.3  # training time per live tick: Pause answers within one tick
RUN_EVERY = 0.5  # seconds between live ticks
TABS = ["Train", "Latents", "How it works"]
NOTEBOOKS = {
    "notebooks/00_derivation_eq6.ipynb": "Eq. 6 derived step by step, and checked numerically",
    "notebooks/01_four_circles.ipynb": "the four-circles experiment of the paper (Fig. 2)",
}
DATASET_NAMES = {
    "four-circles": "Four circles (paper Fig. 2)",
    "two-moons": "Two moons",
    "checkerboard": "Checkerboard",
    "eight-gaussians": "Eight Gaussians",
}
MODEL_NAMES = {"f-nsf": "F-NSF: funnel, 2-D → 1-D", "nsf": "NSF: 2-D → 2-D"}

st.set_page_config(page_title="funnelkit: funnels live", page_icon="🌀", layout="wide")
ss = st.session_state
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
    for name, value in settings.to_query().items():
        if st.query_params.get(name) != value:
            st.query_params[name] = value


# -- buttons (callbacks run before the script, so the page shows their effect at once) -----------
def play():
    ss.running = True
    ss.train_error = None


def pause():
    ss.running = False


def step():
    try:
        ss.run.step(1)
    except fk.TrainingDiverged as error:
        ss.train_error = str(error)


def reset():
    ss.running = False
    ss.train_error = None
    ss.run.reset()


def load_pretrained():
    try:
        ss.run.load_pretrained()
        ss.train_error = None
    except (ValueError, OSError) as error:  # the file went away or is damaged: say so, keep the model
        ss.train_error = f"Could not load the pretrained model: {error}"


# -- sidebar -------------------------------------------------------------------------------------
def sidebar():
    with st.sidebar:
        st.header("Settings")
        st.selectbox("Dataset", live.DATASETS, key="dataset", format_func=DATASET_NAMES.get)
        st.radio("Model", live.MODELS, key="model", format_func=MODEL_NAMES.get,
                 help="F-NSF ends in a funnel layer (Eq. 6) that drops x₁; NSF keeps both dimensions.")
        low, high = live.LIMITS["hidden"]
        st.number_input("Hidden units", low, high, step=8, key="hidden", help="Width of each spline's MLP.")
        low, high = live.LIMITS["bins"]
        st.number_input("Spline bins", low, high, step=1, key="bins")
        low, high = live.LIMITS["lr"]
        st.number_input("Learning rate", low, high, step=1e-4, format="%.5f", key="lr")
        low, high = live.LIMITS["batch"]
        st.number_input("Batch size", low, high, step=32, key="batch")
        low, high = live.LIMITS["seed"]
        st.number_input("Seed", low, high, step=1, key="seed", help="Initial weights and the training data stream.")
        st.caption("Dataset, model, sizes and seed start a fresh model; learning rate and batch size "
                   "apply to the running one. The page URL holds these settings: copy it to share.")


def sidebar_footer(run):
    with st.sidebar:
        st.divider()
        device = str(run.device)
        if run.device.type == "cuda":
            device += f" ({torch.cuda.get_device_name(run.device)})"
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
    if run.settings.pretrained_path() is not None:
        cols[4].button("Load pretrained", key="load_pretrained", on_click=load_pretrained, width="stretch",
                       help="The model shipped in data/checkpoints, trained with the quick preset.")
    live_every = RUN_EVERY if ss.running else None
    st.fragment(run_every=live_every)(live_panel)()


def live_panel():
    """Redrawn on every tick while playing; trains about TICK_SECONDS first."""
    run = ss.run
    if ss.running:
        try:
            run.tick(TICK_SECONDS)
        except fk.TrainingDiverged as error:
            ss.train_error, ss.running = str(error), False
            st.rerun()  # the whole page, so that the timer stops and Play comes back
    if ss.train_error:
        st.error(ss.train_error)
    reference = run.reference_nll()
    m = st.columns(4)
    m[0].metric("iteration", f"{run.iteration:,}")
    m[1].metric("loss (−log p, nats)", "–" if run.last_loss is None else f"{run.last_loss:.3f}",
                help="Mean of the last 20 steps.")
    if reference is not None:
        m[2].metric("best possible (true density)", f"{reference:.3f}")
    speed = run.steps_per_second
    m[3].metric("steps / s", "–" if speed is None else f"{speed:.1f}",
                help="Training speed: steps per second of training time (drawing excluded).")
    note = ""
    if run.source.startswith("shipped"):
        note = (" It was trained with a cosine schedule that ends at learning rate 0; training on at a "
                "constant rate first lifts the loss a little.")
    st.caption(f"Model: {run.source}; {run.model.num_parameters():,} parameters on {run.device}. "
               f"{'Training…' if ss.running else 'Paused.'}{note}")
    pictures = run.pictures(GRID, N_SAMPLES, refresh_every="auto" if ss.running else 0.0)
    if ss.get("figures", (None,))[0] is not pictures:  # build plotly figures only for new pictures
        ss.figures = (
            pictures,
            iv.density_heatmap(pictures.axis, pictures.log_density, pictures.data),
            iv.samples_scatter(pictures.samples, pictures.data),
        )
    c = st.columns(3)
    c[0].plotly_chart(ss.figures[1], key="density")
    c[1].plotly_chart(ss.figures[2], key="samples")
    history = run.trainer.history
    c[2].plotly_chart(iv.loss_curve(history["step"], history["loss"], reference), key="loss")


# -- Latents tab ---------------------------------------------------------------------------------
def latents_tab(run):
    st.markdown("A flow maps data to a latent that should be **N(0, 1)**. "
                f"Here the data are pushed through the model at iteration {run.iteration:,}.")
    view = run.latents(2000)
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
    st.markdown("The derivation and the experiment, step by step, in Jupyter (from the repository root):")
    for i, (path, what) in enumerate(NOTEBOOKS.items()):
        left, right = st.columns([4, 1])
        left.markdown(f"**`{path}`**: {what}.  \n`jupyter lab {path}`")
        notebook = REPO_ROOT / path
        if notebook.is_file():
            right.download_button("Download", notebook.read_bytes(), file_name=notebook.name,
                                  mime="application/x-ipynb+json", key=f"notebook_{i}", on_click="ignore")


# -- page ----------------------------------------------------------------------------------------
def main():
    init_session()
    sidebar()
    st.title("Funnels, live")
    st.caption("Exact maximum likelihood with dimensionality reduction (Klein, Raine, Pina-Otey, "
               "Voloshynovskiy, Golling). Train a funnel on a 2-D toy, look inside it, read Eq. 6.")
    for problem in ss.url_problems:
        st.error(problem)
    try:
        settings = current_settings()
        run = current_run(settings)
    except ValueError as error:
        st.error(f"These settings cannot be used: {error}")
        st.stop()
    write_url(settings)
    sidebar_footer(run)
    tabs = st.tabs(TABS, key="tab", bind="query-params")
    for tab, render in zip(tabs, (train_tab, latents_tab, how_tab)):
        if tab.open:
            with tab:
                render(run)


main()
