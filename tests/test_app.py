"""The dashboard, headless, with Streamlit's AppTest (no browser, no timer: one run per .run())."""

import io
import json
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

import funnelkit as fk
from funnelkit.app import gallery, live, live_settings
from funnelkit.experiments.shipped import SHIPPED_RUNS

from .test_gallery import make_run

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 120  # the first run imports torch and builds a model; a busy CI machine is slow


@pytest.fixture(autouse=True)
def _light_app(monkeypatch):
    """Small pictures on CPU; torch's thread count restored after the app set it."""
    monkeypatch.setenv("FUNNELKIT_APP_GRID", "40")
    monkeypatch.setenv("FUNNELKIT_APP_SAMPLES", "200")
    monkeypatch.setenv("FUNNELKIT_APP_DEVICE", "cpu")
    monkeypatch.setenv("FUNNELKIT_APP_METRIC_SAMPLES", "0")  # no digit FID, except where a test asks for it
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def no_shipped(tmp_path, monkeypatch):
    """No shipped checkpoint, whatever this checkout holds: the app starts from a fresh model."""
    monkeypatch.setattr(live_settings, "shipped_checkpoint", lambda *args: tmp_path / "absent.pt")


def start(query=None, **params):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in {**(query or {}), **params}.items():
        at.query_params[key] = value
    return at.run()


def metric(at, label):
    (found,) = [m for m in at.metric if m.label == label]
    return found.value


def iteration(at):
    return int(metric(at, "iteration").replace(",", ""))


def live_plots(at):
    """The page's live plots (funnelkit/viz/canvas_plots.js's elements): key -> (element id, data sent)."""
    return {e.proto.id.rsplit("-", 1)[-1].removeprefix("live_"): (e.proto.id, json.loads(e.proto.json))
            for e in at.get("bidi_component") if e.proto.component_name == "funnelkit_live_plot"}


def test_train_tab_renders_with_charts_and_controls(no_shipped):
    at = start()
    assert not at.exception
    assert [t.label for t in at.tabs] == ["Train", "Latents", "Watch it move", "Samples", "Compare", "How it works"]
    assert iteration(at) == 0
    assert metric(at, "best possible (true density)") == "2.865"
    plots = live_plots(at)
    assert {key: data["kind"] for key, (_, data) in plots.items()} == {
        "density": "density", "samples": "samples", "loss": "loss"}
    for key in ("play", "pause", "step", "reset"):
        assert at.button(key=key) is not None
    assert at.button(key="pause").disabled and not at.button(key="play").disabled
    footer = " ".join(c.value for c in at.sidebar.caption)
    assert "torch" in footer and "nflows" in footer and "streamlit" in footer and "cpu" in footer
    assert not at.error
    assert "samples" not in at.session_state and not at.image  # lazy tabs: no image run was looked for


@pytest.mark.parametrize("model", ["f-nsf", "nsf"])
def test_latents_tab_renders(no_shipped, model):
    at = start(tab="Latents", model=model, hidden_features="16", num_bins="4")
    assert not at.exception
    assert [m.label for m in at.metric][0].startswith("KS distance")
    ks = [float(m.value) for m in at.metric]
    assert len(ks) == (1 if model == "f-nsf" else 2) and all(0 <= k <= 1 for k in ks)
    charts = at.get("plotly_chart")
    if model == "f-nsf":
        assert len(charts) == 3  # latent histogram, layers, funnel
        assert not at.info
    else:
        assert len(charts) == 2
        assert "no funnel" in at.info[0].value
    assert not [m for m in at.metric if m.label == "iteration"]  # lazy tabs: Train did not run


def test_how_it_works_tab_renders(no_shipped):
    at = start(tab="How it works", hidden_features="16", num_bins="4")
    assert not at.exception
    latex = at.get("latex")
    assert len(latex) >= 1 and "p_{\\phi}" in latex[0].value and "J_{\\theta}" in latex[0].value
    assert len(at.dataframe) == 1
    page = " ".join(m.value for m in at.markdown)
    assert "notebooks/00_derivation_eq6.ipynb" in page and "notebooks/02_four_circles.ipynb" in page
    # The table's sum and log_prob agree (they are printed side by side).
    text = [m.value for m in at.markdown if "terms add up to" in m.value][0]
    numbers = [part.split("**")[0] for part in text.split("**")[1::2]]
    assert len(numbers) == 2 and float(numbers[0]) == pytest.approx(float(numbers[1]), abs=2e-4)


def test_step_trains_one_iteration(no_shipped):
    at = start(hidden_features="16", num_bins="4")
    run = at.session_state.run
    at.button(key="step").click().run()
    assert not at.exception
    assert iteration(at) == 1 and len(run.trainer.history["loss"]) == 1
    assert metric(at, "loss (−log p, nats)") != "–"
    at.button(key="step").click().run()
    assert iteration(at) == 2 and at.session_state.run is run


def test_play_trains_on_each_run_and_pause_stops(no_shipped):
    """A live cycle first shows the run as it is, then trains: each run shows what the one before trained."""
    at = start(hidden_features="16", num_bins="4")
    at.button(key="play").click().run()
    assert not at.exception and at.session_state.running
    run = at.session_state.run
    trained = run.iteration
    assert iteration(at) == 0 and trained >= 1  # the fragment ran once, as part of the run: drew, then trained
    assert at.button(key="play").disabled and not at.button(key="pause").disabled
    at.run()
    assert iteration(at) == trained and run.iteration > trained
    at.button(key="pause").click().run()
    assert not at.session_state.running
    paused = iteration(at)
    at.run()
    assert iteration(at) == paused


def test_reset_starts_a_fresh_model(no_shipped):
    at = start(hidden_features="16", num_bins="4")
    at.button(key="step").click().run()
    assert iteration(at) == 1
    at.button(key="reset").click().run()
    assert iteration(at) == 0 and not at.exception


@pytest.mark.parametrize("button", ["play", "step"])
def test_a_learning_rate_of_one_pauses_with_a_warning_not_a_traceback(button):
    """The shipped NSF at lr 1.0: before, drawing it raised nflows' AssertionError into the page on the
    first Play tick (24 steps) or the third Step; now the page warns and pauses, and Play comes back."""
    assert fk.paths.shipped_checkpoint("four-circles", "nsf", "quick").is_file(), "a tracked checkpoint is missing"
    at = start(model="nsf", lr="1.0")
    start_step = iteration(at)
    for i in range(20):
        if i == 0 or button == "step":
            at.button(key=button).click()
        at.run()
        assert not at.exception
        if at.warning:
            break
    run = at.session_state.run
    assert run.paused and not at.session_state.running
    (warning,) = [w.value for w in at.warning]
    assert "learning rate 1 " in warning and "press Play" in warning
    assert f"from step {run.iteration:,}" in warning and iteration(at) == run.iteration >= start_step
    assert not at.button(key="play").disabled and at.button(key="pause").disabled
    paused_at = run.iteration
    at.number_input(key="lr").set_value(0.001).run()  # the way back: a lower rate, then Play
    assert iteration(at) == paused_at and at.warning  # a new rate alone does not train
    at.button(key="play").click().run()
    assert not at.exception and not at.warning and at.session_state.running
    assert run.iteration > paused_at and not run.paused and at.session_state.run is run  # shown on the next run


@pytest.mark.parametrize(
    "params, words",
    [
        ({"hidden_features": "0"}, ["hidden_features=", "hidden units must be a whole number from 1 to 512, got 0"]),
        ({"dataset": "spiral"}, ["unknown dataset 'spiral'"]),
        ({"lr": "fast", "batch_size": "-3"}, ["learning rate must be a number", "batch size"]),
    ],
)
def test_bad_setting_in_the_link_shows_a_message_not_a_traceback(no_shipped, params, words):
    at = start(params)
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    for word in words:
        assert word in errors
    assert iteration(at) == 0  # the app still works, with the defaults
    assert at.session_state.run.settings == live_settings.LiveSettings()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has the device asked for")
def test_a_device_that_is_absent_shows_a_message(no_shipped, monkeypatch):
    monkeypatch.setenv("FUNNELKIT_APP_DEVICE", "cuda")
    at = start(hidden_features="16", num_bins="4")
    assert not at.exception
    assert "FUNNELKIT_APP_DEVICE='cuda' was ignored" in " ".join(e.value for e in at.error)
    assert at.session_state.run.device.type in ("cpu", "mps")


def test_link_sets_the_settings(no_shipped):
    at = start(dataset="two-moons", model="nsf", hidden_features="16", num_bins="6", lr="0.01", batch_size="64", seed="3")
    assert not at.exception and not at.error
    assert at.selectbox(key="dataset").value == "two-moons"
    assert at.radio(key="model").value == "nsf"
    assert at.number_input(key="hidden_features").value == 16
    assert at.session_state.run.settings == live_settings.LiveSettings("two-moons", "nsf", 16, 6, 0.01, 64, 3)
    assert at.session_state.run.model.latent_dim == 2
    assert not [m for m in at.metric if m.label.startswith("best possible")]  # no true density


def test_changing_a_setting_writes_the_link(no_shipped):
    at = start(hidden_features="16", num_bins="4")
    assert at.query_params["hidden_features"] == "16"
    at.button(key="step").click().run()
    at.number_input(key="lr").set_value(0.01).run()
    assert at.query_params["lr"] == "0.01"
    assert iteration(at) == 1  # a new learning rate keeps training the same model
    at.selectbox(key="dataset").set_value("checkerboard").run()
    assert at.query_params["dataset"] == "checkerboard"
    assert iteration(at) == 0 and at.session_state.run.settings.dataset == "checkerboard"


def test_first_open_shows_the_shipped_model(tmp_path, monkeypatch):
    path = tmp_path / "four-circles-f-nsf-quick.pt"
    monkeypatch.setattr(live_settings, "shipped_checkpoint", lambda *args: path)
    torch.manual_seed(0)
    model = fk.models.plane_model("f-nsf", preset="quick")
    trainer = fk.Trainer(model, lambda n, g: fk.data.four_circles(n, generator=g), fk.TrainConfig(steps=10))
    trainer.train_step()
    trainer.train_step()
    trainer.train_step()
    fk.save_checkpoint(path, model, {}, trainer.state_dict())

    at = start()
    assert not at.exception
    assert iteration(at) == 3
    assert at.button(key="load_pretrained") is not None
    assert any("shipped checkpoint" in c.value for c in at.caption)
    at.button(key="reset").click().run()
    assert iteration(at) == 0
    at.button(key="load_pretrained").click().run()
    assert iteration(at) == 3


def test_real_shipped_model_shows_at_once():
    assert fk.paths.shipped_checkpoint("four-circles", "f-nsf", "quick").is_file(), "a tracked checkpoint is missing"
    at = start()
    assert not at.exception and iteration(at) > 0
    assert float(metric(at, "loss (−log p, nats)")) < 3.5


def test_the_shipped_model_says_how_it_goes_on_and_play_keeps_its_loss():
    """The opening page names the rate Play continues at; 20 steps of Play keep the loss near 2.898."""
    assert fk.paths.shipped_checkpoint("four-circles", "f-nsf", "quick").is_file(), "a tracked checkpoint is missing"
    at = start()
    opening = float(metric(at, "loss (−log p, nats)"))
    line = f"Play goes on at learning rate {live.SHIPPED_CONTINUE_LR:g}, where its cosine schedule ended"
    assert any(line in c.value for c in at.caption)
    start_iteration = iteration(at)
    assert "run" not in at.session_state  # drawn from the shipped model's opening view: built on first use
    at.button(key="play").click().run()
    for _ in range(20):  # a live cycle trains about a tenth of a second
        at.run()
        if iteration(at) > start_iteration + 20:
            break
    assert iteration(at) > start_iteration  # a tick trains for a time slice: how many steps depends on the CPU
    assert abs(float(metric(at, "loss (−log p, nats)")) - opening) < 0.03
    assert at.session_state["run"].lr == live.SHIPPED_CONTINUE_LR


def test_each_train_plot_has_a_caption_for_students(no_shipped):
    at = start()
    captions = [c.value for c in at.caption]
    assert any(c.startswith("Bright where the model puts probability") for c in captions)
    assert any(c.startswith("Points drawn from the model") for c in captions)
    assert any(c.startswith("Loss per step") for c in captions)
    assert len(live_plots(at)) == 3


def test_presentation_mode_hides_the_sidebar_and_keeps_the_link(no_shipped):
    at = start(present="1")
    assert not at.exception and not at.error  # "present" is not a setting: no message about it
    assert at.query_params["present"] in ("1", ["1"])
    styles = " ".join(str(h.proto) for h in at.get("html"))
    assert "stSidebar" in styles and "display: none" in styles
    plain = " ".join(str(h.proto) for h in start().get("html"))
    assert "stSidebar" not in plain  # the sidebar is hidden only in the presentation mode


# -- live tabs and never a traceback (issue 13, items 2 and 8) -----------------------------------
def shown_iteration(at, words):
    """The iteration named in the markdown that holds ``words`` ("at iteration 1,234")."""
    import re

    (text,) = [m.value for m in at.markdown if words in m.value]
    return int(re.search(r"at iteration ([0-9,]+)", text).group(1).replace(",", ""))


@pytest.mark.parametrize("tab, words", [("Latents", "pushed through the model"), ("How it works", "Mean over 256")])
def test_latents_and_the_eq6_table_follow_the_training_while_play_runs(no_shipped, tab, words):
    at = start(tab=tab, hidden_features="16", num_bins="4")
    run = at.session_state.run
    assert shown_iteration(at, words) == 0
    at.session_state.running = True  # Play, pressed on the Train tab; this tab trains and redraws itself
    for _ in range(15):
        at.run()
        assert not at.exception and not at.error
        if shown_iteration(at, words) > 0:
            break
    assert 0 < shown_iteration(at, words) <= run.iteration
    if tab == "How it works":
        numbers = [m.value for m in at.markdown if "Mean over 256" in m.value][0].split("**")[1::2]
        assert float(numbers[0]) == pytest.approx(float(numbers[1]), abs=2e-4)  # still adds up, live
    else:
        assert len(at.get("plotly_chart")) == 3  # histogram, layers, inside the funnel


def test_the_live_plots_show_the_run_and_keep_their_elements_while_it_trains(no_shipped):
    """While Play runs, each live plot keeps its element (the same id: the browser redraws it in place) and
    shows the run now: the density and samples of its latest pictures, the loss of its whole history."""
    import math

    import numpy as np

    from funnelkit.viz import canvas_plots

    at = start(hidden_features="16", num_bins="4")
    before = live_plots(at)
    at.button(key="play").click().run()
    playing = []
    for _ in range(8):
        at.run()
        playing.append(live_plots(at))
    assert len({canvas_plots.decoded(p["loss"][1])["steps"][-1] for p in playing}) > 1  # new data while playing ...
    for shown in playing:  # ... in the same elements
        assert {k: v[0] for k, v in shown.items()} == {k: v[0] for k, v in before.items()}
    at.button(key="pause").click().run()
    after = live_plots(at)  # paused: the pictures of the run now
    run = at.session_state.run
    pictures = run.pictures(40, 200, refresh_every=math.inf)
    assert pictures.step > 0
    assert after["density"][1] == canvas_plots.density_plot(pictures.axis, pictures.log_density, pictures.data,
                                                            height=after["density"][1]["height"])
    shown = canvas_plots.decoded(after["samples"][1])["samples"].reshape(-1, 2)
    assert np.allclose(shown, pictures.samples, rtol=1e-6, atol=1e-6)
    history = run.trainer.history
    loss = canvas_plots.decoded(after["loss"][1])
    assert loss["steps"][-1] == history["step"][-1] == run.iteration > 0
    assert loss["means"][-1] == pytest.approx(np.mean(history["loss"][-min(50, run.iteration):]), rel=1e-6)


def test_a_nan_loss_in_training_steps_back_and_pauses_with_a_message(no_shipped):
    at = start(hidden_features="16", num_bins="4")
    at.button(key="step").click().run()
    at.button(key="step").click().run()
    run = at.session_state.run
    next(run.model.parameters()).data.fill_(float("nan"))  # the next loss is NaN
    at.button(key="play").click().run()
    at.run()
    assert not at.exception and not at.session_state.running and run.paused
    (warning,) = [w.value for w in at.warning]
    assert "the loss became nan" in warning and "restored the model from step 2" in warning and "press Play" in warning
    assert iteration(at) == 2 and all(p.isfinite().all() for p in run.model.parameters())
    assert not at.button(key="play").disabled and at.button(key="pause").disabled  # the way back: Play


def test_an_unexpected_error_in_a_tick_pauses_restores_and_play_goes_on(no_shipped):
    at = start(hidden_features="16", num_bins="4")
    at.button(key="step").click().run()
    run = at.session_state.run

    def broken(seconds, max_steps=None):
        run.trainer.train_step()
        raise KeyError("a bug")

    run.trainer.train_for = broken
    at.button(key="play").click().run()
    at.run()
    assert not at.exception and not at.session_state.running and run.paused
    (warning,) = [w.value for w in at.warning]
    assert warning.startswith("Training failed at step 2 with an error the kit did not expect (KeyError: 'a bug')")
    assert "restored the model from step 1" in warning and "Press Play to try again, or Reset" in warning
    assert iteration(at) == 1 and not at.button(key="play").disabled
    del run.trainer.train_for  # fixed: Play goes on from step 1
    at.button(key="play").click().run()
    at.run()
    assert not at.exception and not at.warning and run.iteration > 1


@pytest.mark.parametrize("plot", ["density_plot", "loss_plot"])
def test_a_plot_that_fails_shows_a_message_where_the_plot_would_be(no_shipped, monkeypatch, plot):
    from funnelkit.viz import canvas_plots

    def broken(*args, **kwargs):
        raise ValueError("plotly could not make it")

    monkeypatch.setattr(canvas_plots, plot, broken)
    at = start(hidden_features="16", num_bins="4")
    assert not at.exception
    (warning,) = [w.value for w in at.warning]
    assert warning.startswith("Drawing the Train tab's plots failed at step 0 with an error the kit did not expect "
                              "(ValueError: plotly could not make it); the model is unchanged and paused.")
    assert not live_plots(at) and len([i for i in at.info if "could not be drawn" in i.value]) == 3
    assert iteration(at) == 0 and not at.button(key="play").disabled  # the numbers and the buttons are there
    monkeypatch.undo()  # the way back: Play tries again
    monkeypatch.setenv("FUNNELKIT_APP_GRID", "40")
    monkeypatch.setenv("FUNNELKIT_APP_SAMPLES", "200")
    monkeypatch.setenv("FUNNELKIT_APP_DEVICE", "cpu")
    at.button(key="play").click().run()
    assert not at.exception and not at.warning and len(live_plots(at)) == 3


def test_a_latents_figure_that_fails_is_a_message_not_a_traceback(no_shipped, monkeypatch):
    from funnelkit.viz import interactive

    def broken(*args, **kwargs):
        raise RuntimeError("subplots failed")

    monkeypatch.setattr(interactive, "layer_small_multiples", broken)
    at = start(tab="Latents", hidden_features="16", num_bins="4")
    assert not at.exception
    (warning,) = [w.value for w in at.warning]
    assert "Drawing the Latents tab's views failed" in warning and "RuntimeError: subplots failed" in warning


def test_settings_that_cannot_be_built_show_a_message_and_a_way_back(no_shipped, monkeypatch):
    at = start(hidden_features="16", num_bins="4")
    at.button(key="step").click().run()
    run = at.session_state.run
    plane_model = live.plane_model

    def fails_at_24(name, **kwargs):
        if kwargs.get("hidden_features") == 24:
            raise RuntimeError("not enough memory for 24 hidden units")
        return plane_model(name, **kwargs)

    monkeypatch.setattr(live, "plane_model", fails_at_24)
    at.number_input(key="hidden_features").set_value(24).run()
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert error == "These settings cannot be used: RuntimeError: not enough memory for 24 hidden units"
    assert at.session_state.run is run and run.settings.hidden_features == 16 and run.iteration == 1  # kept
    at.button(key="back_to_settings").click().run()
    assert not at.exception and not at.error
    assert at.number_input(key="hidden_features").value == 16 and iteration(at) == 1 and at.session_state.run is run


def test_a_damaged_shipped_model_gives_a_fresh_one_and_says_why(tmp_path, monkeypatch):
    path = tmp_path / "four-circles-f-nsf-quick.pt"
    path.write_bytes(b"not a checkpoint")
    monkeypatch.setattr(live_settings, "shipped_checkpoint", lambda *args: path)
    at = start()
    assert not at.exception and iteration(at) == 0
    (error,) = [e.value for e in at.error]
    assert error.startswith("The shipped model could not be loaded (")
    assert "is not a readable funnelkit checkpoint" in error
    assert "Press Play to train it, or Load pretrained to try again." in error


def test_a_button_that_fails_is_a_message_and_the_model_is_kept(no_shipped, monkeypatch):
    at = start(hidden_features="16", num_bins="4")
    at.button(key="step").click().run()
    run = at.session_state.run

    def broken(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(live, "plane_model", broken)
    at.button(key="reset").click().run()
    assert not at.exception and at.session_state.run is run and iteration(at) == 1
    (warning,) = [w.value for w in at.warning]
    assert warning.startswith("The reset failed at step 1 with an error the kit did not expect (MemoryError")
    assert "Press Play to try again, or Reset for a fresh model" in warning


# -- Samples and Compare tabs ----------------------------------------------------------------------
@pytest.fixture
def image_runs(tmp_path, monkeypatch):
    """Untrained MNIST 5-bit F-NSF, NSF and VAE run folders, the only ones the app sees."""
    root = tmp_path / "runs"
    fk.seed_everything(0)
    for i, name in enumerate(("f-nsf", "nsf", "vae")):
        make_run(root / "images-quick" / f"mnist5-{name}", fk.models.image_model(name, "mnist", 5, preset="quick"),
                 bpd=1.5 + i, seconds=10.0 + i)
    monkeypatch.setenv(gallery.RUNS_ENV, str(root))
    return root


def png_size(data):
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.size


def test_samples_tab_draws_a_grid_and_the_temperature_changes_it(image_runs):
    at = start(tab="Samples")
    assert not at.exception and not at.error
    assert "run" not in at.session_state  # the 2-D live run is not built for this tab
    assert len(at.image) == 1 and at.download_button(key="download_grid") is not None
    assert at.selectbox(key="image_run").value == "runs/images-quick/mnist5-f-nsf"
    assert at.slider(key="temperature").value == 1.0 and at.segmented_control(key="temperature_preset").value == 1.0
    captions = " ".join(c.value for c in at.caption)
    assert "Only the base noise is tempered" in captions and "T = 1, as in the paper's code" in captions
    assert "cpu" in captions
    first, first_url = at.session_state.sample_png, at.image[0].value[0]
    assert png_size(first) == (8 * 30 + 2, 8 * 30 + 2)  # 64 samples of 28 x 28, padding 2
    assert at.query_params["temperature"] == "1" and at.query_params["run"] == "runs/images-quick/mnist5-f-nsf"

    at.slider(key="temperature").set_value(0.5).run()
    assert not at.exception
    assert at.session_state.sample_png != first and at.image[0].value[0] != first_url
    assert at.segmented_control(key="temperature_preset").value == 0.5  # the preset follows the slider
    assert at.query_params["temperature"] == "0.5"
    at.segmented_control(key="temperature_preset").set_value(0.75).run()
    assert at.slider(key="temperature").value == 0.75
    at.slider(key="temperature").set_value(0.9).run()
    assert at.segmented_control(key="temperature_preset").value is None  # not one of the paper's
    at.segmented_control(key="temperature_preset").set_value(1.0).run()
    assert at.session_state.sample_png == first  # same seed and temperature: the same grid

    at.number_input(key="sample_seed").set_value(5).run()
    assert at.session_state.sample_png != first
    at.number_input(key="n_samples").set_value(9).run()
    assert png_size(at.session_state.sample_png) == (3 * 30 + 2, 3 * 30 + 2)


def test_a_link_opens_its_samples(image_runs):
    at = start(tab="Samples", run="runs/images-quick/mnist5-vae", temperature="0.75", samples="4", sample_seed="7")
    assert not at.exception and not at.error
    assert at.selectbox(key="image_run").value == "runs/images-quick/mnist5-vae"
    assert at.slider(key="temperature").value == 0.75 and at.number_input(key="sample_seed").value == 7
    assert png_size(at.session_state.sample_png) == (2 * 30 + 2, 2 * 30 + 2)
    assert "bound" in " ".join(m.value for m in at.markdown)


def test_a_bad_link_shows_messages_and_the_defaults(image_runs):
    at = start(tab="Samples", run="runs/nope", temperature="hot", samples="0")
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "temperature='hot' was ignored" in errors and "samples='0' was ignored" in errors
    assert "run='runs/nope' is not among the runs found here" in errors
    assert at.selectbox(key="image_run").value == "runs/images-quick/mnist5-f-nsf" and len(at.image) == 1


@pytest.mark.parametrize("tab", ["Samples", "Compare"])
@pytest.mark.parametrize("folder", ["empty", "missing"])
def test_no_image_runs_shows_how_to_make_them(tmp_path, monkeypatch, tab, folder):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv(gallery.RUNS_ENV, str(tmp_path / folder))
    at = start(tab=tab)
    assert not at.exception and not at.image
    (info,) = at.info
    assert "No image runs were found" in info.value and str(tmp_path / folder) in info.value
    assert "funnelkit reproduce table2 --preset quick --runs runs" in info.value


@pytest.mark.parametrize("damage, words", [("truncated", "is damaged"), ("deleted", "no checkpoint.pt beside")])
def test_a_damaged_or_missing_checkpoint_is_reported_and_the_others_still_shown(image_runs, damage, words):
    checkpoint = image_runs / "images-quick" / "mnist5-nsf" / "checkpoint.pt"
    if damage == "truncated":
        checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    else:
        checkpoint.unlink()
    at = start(tab="Compare")
    assert not at.exception
    (error,) = at.error
    assert "A run was skipped" in error.value and words in error.value and "mnist5-nsf" in error.value
    assert len(at.image) == 2  # F-NSF and VAE


def test_a_checkpoint_that_cannot_be_loaded_shows_a_message(image_runs):
    """The archive is sound but its weights do not fit its config: found, then refused at load."""
    folder = image_runs / "images-quick" / "mnist5-f-nsf"
    payload = torch.load(folder / "checkpoint.pt", weights_only=True)
    payload["state_dict"] = {"not.a.weight": torch.zeros(2)}
    torch.save(payload, folder / "checkpoint.pt")
    at = start(tab="Samples")
    assert not at.exception and not at.image
    (error,) = at.error
    assert "Could not load or sample **runs/images-quick/mnist5-f-nsf**" in error.value
    assert "does not match its model config" in error.value
    assert "funnelkit reproduce table2 --preset quick --runs runs" in error.value


def test_compare_tab_shows_three_models_and_their_metrics(image_runs):
    at = start(tab="Compare", temperature="0.5")
    assert not at.exception and not at.error
    assert len(at.image) == 3
    (table,) = at.dataframe
    rows = table.value
    assert list(rows["model"]) == ["F-NSF", "NSF", "VAE"]
    assert list(rows["likelihood"]) == ["exact", "exact", "bound (ELBO)"]
    assert list(rows["bits/dim"]) == [1.5, 2.5, 3.5] and list(rows["latent size"]) == [16, 784, 16]
    stored = json.loads((image_runs / "images-quick" / "mnist5-vae" / "metrics.json").read_text())
    assert rows["parameters"].iloc[2] == stored["parameters"]
    page = " ".join(c.value for c in at.caption)
    assert "T = 0.5" in page and "Only the base noise is tempered" in page and "ELBO" in page
    before = [image.value[0] for image in at.image]
    at.slider(key="temperature").set_value(1.0).run()
    assert all(a != b for a, b in zip(before, [image.value[0] for image in at.image]))


def test_one_label_per_seed_and_the_words_explained_on_hover(image_runs):
    at = start(tab="Compare")
    labels = [n.label for n in at.number_input]
    assert labels.count("Training seed") == 1 and labels.count("Sample seed") == 1 and "Seed" not in labels
    page = " ".join([m.value for m in at.markdown] + [c.value for c in at.caption])
    for word in ("ELBO", "bits/dim", "latent"):
        assert f'">{word}</abbr>' in page, word
    assert at.slider(key="temperature").help.startswith("T scales the base noise")
    samples = start(tab="Samples")
    facts = " ".join(m.value for m in samples.markdown)
    assert '">latent</abbr>' in facts and '">bits/dim</abbr>' in facts


def test_the_temperature_is_kept_across_the_image_tabs(image_runs):
    at = start(tab="Samples")
    at.slider(key="temperature").set_value(0.5).run()
    at.query_params["tab"] = "Compare"
    at.run()
    assert not at.exception and len(at.image) == 3
    assert at.slider(key="temperature").value == 0.5
    at.query_params["tab"] = "Samples"
    at.run()
    assert at.slider(key="temperature").value == 0.5 and len(at.image) == 1


def test_the_temper_choice_changes_the_grid_and_the_link(image_runs):
    at = start(tab="Samples", temperature="0.5")
    assert not at.exception and at.radio(key="temper").value == "base"
    assert at.radio(key="temper").options == list(gallery.TEMPER_LABELS.values())
    first = at.session_state.sample_png
    at.radio(key="temper").set_value("all").run()
    assert not at.exception and at.query_params["temper"] == "all" and at.session_state.sample_png != first
    captions = " ".join(c.value for c in at.caption)
    assert "the decoders' noise are tempered" in captions
    assert "Where the randomness comes from" in captions and "decoder noise" in captions
    at.radio(key="temper").set_value("mean").run()
    assert at.query_params["temper"] == "mean" and at.session_state.sample_png != first
    assert "gives its mean" in " ".join(c.value for c in at.caption)
    at.radio(key="temper").set_value("base").run()
    assert at.session_state.sample_png == first  # the paper's tempering, the same draw


def test_a_link_opens_its_temper_and_a_bad_one_is_named(image_runs):
    at = start(tab="Compare", temper="mean", temperature="0")
    assert not at.exception and not at.error
    assert at.radio(key="temper").value == "mean" and at.slider(key="temperature").value == 0.0
    assert len(at.image) == 3 and "(decoder means)" in " ".join(c.value for c in at.caption)
    at = start(tab="Samples", temper="hot")
    assert not at.exception and at.radio(key="temper").value == "base"
    assert "temper='hot' was ignored: unknown temper 'hot'; expected one of 'base', 'all', 'mean'" in \
        " ".join(e.value for e in at.error)


def test_the_digit_metric_and_the_training_sit_under_every_grid(image_runs, monkeypatch):
    monkeypatch.setenv("FUNNELKIT_APP_METRIC_SAMPLES", "100")
    at = start(tab="Samples", temperature="0.5", temper="all", sample_seed="3")
    assert not at.exception and not at.error
    model = fk.load(image_runs / "images-quick" / "mnist5-f-nsf")
    expected = gallery.digit_quality(model, 0.5, "all", 3, n=100).line
    captions = [c.value for c in at.caption]
    assert any(expected in c for c in captions), captions
    assert "the kit's MNIST classifier, 100 samples; real digits score about" in expected
    assert any("Trained 10 steps in 0.2 minutes on MNIST test." in c for c in captions)

    at.query_params["tab"] = "Compare"
    at.run()
    assert not at.exception and not at.error and len(at.image) == 3
    lines = [c.value for c in at.caption if "digit FID" in c.value]
    assert len(lines) == 3 and any(expected in line for line in lines)
    assert sum("Trained 1" in line for line in lines) == 3


def test_samples_tab_on_the_shipped_runs(monkeypatch):
    assert (SHIPPED_RUNS / "images-quick").is_dir(), "the tracked runs data/runs/images-quick are missing"
    monkeypatch.setenv(gallery.RUNS_ENV, str(SHIPPED_RUNS))
    at = start(tab="Samples", temperature="0.5")
    assert not at.exception and not at.error and len(at.image) == 1
    assert at.selectbox(key="image_run").value.startswith("shipped/images-classroom/")  # the classroom F-NSF opens
    facts = " ".join(m.value for m in at.markdown)
    assert "Test <abbr title=" in facts and ">bits/dim</abbr>:" in facts  # explained on hover


@pytest.mark.parametrize("model", ["f-nsf", "nsf"])
def test_watch_it_move_tab_renders_an_animation_of_the_sessions_model(model):
    at = start(tab="Watch it move", model=model)
    assert not at.exception
    (chart,) = at.get("plotly_chart")
    figure = json.loads(chart.proto.spec)
    from funnelkit.viz.flow_path import round_trip

    path = round_trip(at.session_state["run"].model, 400, seed=at.session_state["run"].settings.seed)
    assert len(figure["frames"]) == len(path.stages) == len(figure["layout"]["sliders"][0]["steps"])
    assert [b["label"] for b in figure["layout"]["updatemenus"][0]["buttons"]] == ["▶ Play", "❚❚ Pause"]
    assert ("draw x₁" in [s.label for s in path.stages]) == (model == "f-nsf")  # the funnel's draw from p_φ
    assert "follow a colour" in at.caption[0].value
    assert not [m for m in at.metric if m.label == "iteration"]  # lazy tabs: Train did not run


def test_a_playing_page_says_when_other_trainings_share_the_machine(monkeypatch):
    from funnelkit.app import room

    monkeypatch.setattr(room, "ACTIVITY", room.Activity())  # not the earlier tests' pages, still counted for 2 s
    at = start()
    at.button(key="play").click().run()
    assert not any("This machine is shared" in c.value for c in at.caption)  # only this page trains
    room.ACTIVITY.beat("another page")
    at.run()
    assert any("This machine is shared: 2 trainings" in c.value for c in at.caption)


def test_the_loss_legend_names_the_steps_its_mean_takes(no_shipped):
    """The running mean's legend names how many steps it averages: the count while there are fewer than 50,
    then 50."""
    at = start(hidden_features="16", num_bins="4")
    at.button(key="step").click().run()
    run = at.session_state.run
    run.step(40)
    at.run()
    assert live_plots(at)["loss"][1]["window"] == 41
    run.step(30)
    at.run()
    assert live_plots(at)["loss"][1]["window"] == 50
