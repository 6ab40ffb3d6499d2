"""What the command line prints after ``train``, ``eval`` and ``sample``: the run and its model,
the data (stand-ins labelled), the test numbers of each experiment and what was written."""

from __future__ import annotations

import math

from ..checkpoints import CHECKPOINT_NAME
from ..experiments.commands import TRAINABLE
from ..experiments.four_circles import format_numbers as four_circles_numbers
from ..experiments.results import data_line
from ..runs import EVALUATION_NAME, METRICS_NAME

#: How ``funnelkit sample`` says what the temperature scaled (keys: funnelkit.models.tempering.TEMPER_MODES).
TEMPERED = {"base": "the base noise only", "all": "the base and the decoders' noise",
            "mean": "the base noise; decoder means"}
#: What ``funnelkit train`` did to the run folder, by the run's status.
_DONE = {"trained": "trained", "resumed": "resumed and finished", "extended": "extended the finished run",
         "loaded": "loaded the finished run (not trained again)"}


def format_eval(model, spec, run, numbers, records, how) -> str:
    """What ``funnelkit eval`` prints: the run and model, the data, the test numbers
    (four circles: the model line and the numbers beside the true density)."""
    if spec.experiment == "four-circles":
        return (f"{run}: {spec.model} ({spec.preset} preset), latent dim {model.latent_dim}\n"
                + format_numbers(spec, numbers))
    return "\n".join([describe_model(model, spec, run), format_data(records),
                      format_numbers(spec, numbers, model.exact, how)])


def describe_model(model, spec, run) -> str:
    """Two lines: the run and model, parameters, latent size, exact or a bound."""
    what = TRAINABLE[spec.experiment].data_label(spec)
    likelihood = "exact" if model.exact else "a bound (the ELBO), not exact"
    return (f"{run}: {spec.model} ({spec.experiment}: {what}; {spec.preset} preset)\n"
            f"  {model.num_parameters():,} parameters; latent size {model.latent_dim:,} of "
            f"{math.prod(model.data_shape):,}; log_prob is {likelihood}")


def _nats(numbers, bound, how):
    return (f"test log-likelihood{bound} ({numbers['n']:,} rows, nats, mean +- 2 s.e.{how})\n"
            f"  {numbers['ll']:.4f} +- {numbers['ll_2se']:.4f}")


def _bits_per_dim(numbers, bound, how):
    return (f"test bits/dim{bound} ({numbers['n']:,} images, mean +- 2 s.e.{how})\n"
            f"  {numbers['bpd']:.4f} +- {numbers['bpd_2se']:.4f}")


def _anomaly(numbers, bound, how):
    return (f"test bits/dim{bound} (mean +- 2 s.e.{how})\n"
            f"  MNIST (in distribution, {numbers['n_in']:,} images): "
            f"{numbers['mnist']:.4f} +- {numbers['mnist_2se']:.4f}\n"
            f"  Fashion-MNIST (out of distribution, {numbers['n_out']:,} images): "
            f"{numbers['f_mnist']:.4f} +- {numbers['f_mnist_2se']:.4f}\n"
            f"  ratio F-MNIST / MNIST: {numbers['ratio']:.4f} +- {numbers['ratio_2se']:.4f}; "
            f"AUROC {numbers['auroc']:.4f}")


#: The test numbers of each experiment as lines: ``(numbers, bound, how) -> str``.
_NUMBERS = {"four-circles": lambda numbers, bound, how: four_circles_numbers(numbers), "tabular": _nats,
            "images": _bits_per_dim, "anomaly": _anomaly}


def format_numbers(spec, numbers, exact=True, how=None) -> str:
    """The test numbers as lines: nats, bits/dim, or both sets' bits/dim, +- 2 s.e."""
    return _NUMBERS[spec.experiment](numbers, "" if exact else " (ELBO: a bound)", f"; {how}" if how else "")


def format_data(records) -> str:
    """The data a run used, one line each (stand-ins labelled)."""
    return "data:\n" + "\n".join("  " + data_line(r) for r in records)


def format_train(run, data, spec) -> str:
    """What ``funnelkit train`` prints: the model, the data, the test numbers, the training, the files."""
    training = run.metrics["training"]
    extensions = training.get("extensions") or []
    extended = (f"; extended {len(extensions)} time(s) with a fresh schedule, from step "
                f"{', '.join(format(e['from_step'], ',') for e in extensions)}" if extensions else "")
    names = [name for name in (CHECKPOINT_NAME, METRICS_NAME, EVALUATION_NAME) if (run.out / name).is_file()]
    files = ", ".join(str(run.out / name) for name in names[:-1]) + f" and {run.out / names[-1]}" \
        if len(names) > 1 else str(run.out / names[0])
    return "\n".join([
        describe_model(run.model, spec, run.out),
        format_data(data.records),
        format_numbers(spec, run.metrics["evaluation"], run.metrics["exact"]),
        f"{_DONE[run.status]}: {training['steps']:,} steps of batch {training['config']['batch_size']}, "
        f"lr {training['config']['lr']:g} ({training['train_seconds']:.1f} s of training{extended})",
        f"{'read' if run.status == 'loaded' else 'wrote'} {files}",
    ])


def format_sample(out, n, spec, temperature, temper="base") -> str:
    """What ``funnelkit sample`` prints about the picture it wrote."""
    if spec.experiment == "four-circles":
        return f"wrote {out}: {n:,} samples, temperature {temperature:g} ({TEMPERED[temper]})"
    what = "a corner plot of" if spec.experiment == "tabular" else "a grid of"
    return (f"wrote {out}: {what} {n:,} samples of {spec.model} ({spec.experiment}), temperature {temperature:g} "
            f"({TEMPERED[temper]})")


__all__ = ["TEMPERED", "describe_model", "format_data", "format_eval", "format_numbers", "format_sample",
           "format_train"]
