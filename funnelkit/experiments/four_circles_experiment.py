"""The experiment ``funnelkit train four-circles`` (Fig. 2, A.5): its object for
:mod:`funnelkit.experiments.commands`, over :mod:`.four_circles` (fresh draws of four circles,
the presets of :data:`funnelkit.experiments.four_circles.TRAIN_PRESETS`; the test log-likelihood
beside the true density's).
"""

from ..checkpoints import load
from ..device import seed_everything
from ..models.plane import MODEL_NAMES, plane_model
from . import four_circles
from .results import data_record
from .trainable import Experiment, ExperimentData


class FourCircles(Experiment):
    """Four circles: drawn fresh (no data options), trained and scored by :mod:`.four_circles`,
    sampled on the cpu."""

    name = four_circles.NAME
    models = MODEL_NAMES
    presets = ("quick", "paper", "authors-code")
    default_samples = 20_000
    samples_on_cpu = True

    @property
    def model_kind(self):
        return "plane model"

    def data_label(self, spec):
        return "four circles, 2-D"

    def training_settings(self, spec):
        config = four_circles.train_config(spec.preset)
        return {"steps": config.steps, "batch_size": config.batch_size, "lr": config.lr}

    def build_model(self, spec):
        """The plane model of a run, seeded with the run's seed, as :func:`.four_circles.train_run` builds it."""
        seed_everything(spec.seed)
        model = plane_model(spec.model, preset=spec.preset)
        model.config["data"] = four_circles.NAME
        return model

    def read_data(self, spec, test_max):
        """The :class:`ExperimentData` of four circles: every batch drawn fresh, the test points too."""
        record = data_record("four circles (paper A.5)", "generated: radius-2 circles centred on (+-1, +-1), "
                             f"noise 0.1; fresh training batches, {four_circles.TEST_SIZE:,} test points of seed "
                             f"{four_circles.TEST_SEED}", False, role="training and test")
        return ExperimentData(four_circles.sample_batch, None, None, [record])

    def evaluate(self, spec, model, data=None, progress=False):
        """:func:`funnelkit.experiments.four_circles.evaluate`'s numbers (no per-example values)."""
        return four_circles.evaluate(model), None

    def run_settings(self, spec, settings):
        return {"model": spec.model, "preset": spec.preset, "seed": spec.seed, **settings}

    def train(self, spec, out, settings, command_line, device="auto", progress=True, amp=False, extend=False):
        data = self.load_data(spec)
        describe = {"command": command_line, "data": data.records, "stand_in": False,
                    "settings": self.run_settings(spec, settings)}
        run = four_circles.train_run(spec.model, spec.preset, out, device=device, progress=progress, extend=extend,
                                     describe=describe, steps=spec.steps, seed=spec.seed, amp=bool(amp) or None)
        return run, data

    def evaluate_run(self, run, description, root=None, test_max=None, from_metrics=False, device="cpu",
                     progress=False):
        """As :meth:`Experiment.evaluate_run`, on the cpu, on ``test_max`` (default 100,000) fresh
        points beside the true density; no ``root`` is taken."""
        if root is not None:
            raise ValueError("four-circles runs take no --root (their test points are drawn fresh)")
        model = load(run)
        spec = self.spec_of(model, run, None, description)
        records = self.load_data(spec).records
        if from_metrics:  # the numbers train stored in metrics.json (or, for a lone checkpoint, in it)
            numbers = description.evaluation
            if "model_ll" not in numbers:
                raise ValueError(f"{run} holds no stored test numbers; run `funnelkit eval` without --from-metrics")
            return model, spec, numbers, records, "read from metrics.json"
        numbers = four_circles.evaluate(model, n=test_max or four_circles.TEST_SIZE)
        return model, spec, numbers, records, "recomputed on fresh points"


FOUR_CIRCLES = FourCircles()

__all__ = ["FOUR_CIRCLES", "FourCircles"]
