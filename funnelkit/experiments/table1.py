"""Table 1: test log-likelihood (nats) of GLOW, F-GLOW, NSF, F-NSF, VAE and F-MLP on the MAF
tabular sets (paper Sec. 4 "Tabular Data", A.6, Table 5), and the speed claims beside it.

Presets:

* ``"paper"``: the five sets, MAF-preprocessed (:func:`funnelkit.data.tabular`), and each model's
  Table 5 settings (:func:`funnelkit.models.tabular.tabular_config`: batch size, steps, learning
  rate; the VAE its own learning rate; gradient norm clipped at 5). Missing files raise
  :class:`~funnelkit.data.cache.DatasetNotFoundError` before anything is trained or written.
* ``"quick"``: POWER and GAS with the quick models, 1,000 steps each (the quick batch size;
  about 6 minutes for the twelve runs on one CPU thread). The MAF files are used when
  they are there; when not (these machines never have them), each set is replaced by a
  **stand-in** of the same dimension, labelled as one everywhere: a fixed, seeded mixture of
  ``STANDIN_COMPONENTS`` full-covariance Gaussians whose covariances have a decaying spectrum
  (so the data lie near lower-dimensional sheets, where a funnel has something to drop),
  standardised with the training rows' mean and standard deviation as MAF does. Its exact log
  density is known, so the table also prints the best any model can do on it.
* ``"classroom"``: the same models and stand-ins trained longer, as far as about two hours of one
  CPU thread allow for the twelve (128 minutes measured here): ``CLASSROOM_STEPS`` steps each, GLOW and F-GLOW
  ``CLASSROOM_GLOW_STEPS`` (their steps are the cheapest); the shipped runs of
  ``data/runs/table1-classroom``, which notebook 04 loads.

Each model is trained by :func:`funnelkit.experiments.runs.train_or_load` in
``<runs>/table1-<preset>/<data>-<model>`` (resumable; a finished run is loaded). As NSF's and the
authors' ``uci.py`` do, the model tested is the one of the best validation loss: the Trainer
(``keep_best``) computes the mean negative log-likelihood on the whole validation split every
``VALIDATION_EVERY`` steps (the authors' ``monitor_interval``; a twentieth of a shorter run) and at
the last step, keeps the weights of the lowest, and ends with them; the table records that step
(``best_step``). The test log-likelihood is the mean over the whole test split with two standard
errors, 2 s / sqrt(N) as in both ``uci.py``; a VAE's is its single-sample ELBO, a bound. Seconds
per step are the median wall time of a training step (batch of the preset, this machine,
``torch`` threads as set), which the paper's speed claims are about: F-MLP "up to six times
faster than the flows" and similar to the VAE, and funnels with a flow decoder up to 20% slower
than their baselines. The verdicts are computed from the measured times, never written in advance.

Choices where the paper is silent: the F-MLP uses the flows' learning rate ("all other
parameters were held the same as those used for the flows"); the model evaluated is the
best-validation one, as in NSF's and the authors' code (training still runs all the steps: no
early stopping).
"""

import time
import zlib

from ..data.tabular import TABULAR_DATASETS
from ..device import pick_device, seed_everything
from ..metrics import mean_and_error
from ..models.tabular import tabular_config, tabular_model
from . import paper_numbers as paper
from .results import count, data_line, pm, table, write_result
from .runs import choose_settings, nats, row_batches, runs_folder, train_or_load
from .tabular_runs import (CLASSROOM_GLOW_STEPS, CLASSROOM_STEPS, PRESETS, VALIDATION_EVERY, StandIn, Table1Settings,
                           best_validation_config, load_data)

NAME = "table1"


# --------------------------------------------------------------------------------------------
# The entry
# --------------------------------------------------------------------------------------------

def _run_name(dataset, standin, model, steps, settings):
    """``<data>-s<steps>-<model>[-custom<hash>]``: a folder per data, length and build of a run."""
    data = f"{dataset}-standin{len(standin.splits['train'])}" if standin is not None else dataset
    custom = (f"-custom{zlib.crc32(repr(sorted(settings.model_overrides.items())).encode()):08x}"
              if settings.model_overrides else "")
    return f"{data}-s{steps}-{model}{custom}"


def reproduce_table1(preset="quick", out="results", device="cpu", progress=True, root=None, runs=None,
                     **overrides):
    """Train (or load) the six models on each set, evaluate them, write ``table1.json`` and ``table1.md``.

    ``root``: the unpacked MAF archive (default: the kit's cache); ``runs``: the runs folder
    (default ``runs``). ``overrides`` change :class:`Table1Settings` fields (e.g. ``steps=50``,
    ``datasets=("power",)``, ``model_overrides={...}``, ``standin_sizes=(...)``).
    """
    settings = choose_settings(PRESETS, preset, overrides, NAME)
    data = load_data(settings, root)  # raises before anything is written when a file is missing
    device = pick_device(device)
    folder = runs_folder(runs, NAME, preset)
    started = time.perf_counter()
    ours, truth = {}, {}
    for dataset, (splits, record, standin) in data.items():
        config = tabular_config(dataset, settings.model_preset, **settings.model_overrides)
        test = splits["test"]
        if standin is not None:
            mean, error = mean_and_error(standin.log_prob(test))
            truth[dataset] = {"ll": mean, "ll_2se": error}
        ours[dataset] = {}
        for model_name in settings.models:
            seed_everything(0)
            model = tabular_model(model_name, dataset, preset=settings.model_preset, **settings.model_overrides)
            model = model.to(device)
            lr = config.vae_lr if model_name == "vae" else config.lr
            steps = settings.model_steps.get(model_name) or settings.steps or config.steps
            run = train_or_load(
                model, row_batches(splits["train"]), best_validation_config(steps, config.batch_size, lr,
                                                                            config.grad_clip_norm),
                folder / _run_name(dataset, standin, model_name, steps, settings),
                evaluate=lambda m, x=test: (nats(m, x), None),
                evaluation_key={"data": record, "test_rows": len(test)},
                validation=splits["val"], progress=progress,
                name=f"table1 {record['name']} {model_name}", describe={"data": record, "result": NAME},
            )
            best = run.metrics["training"]["best"]
            ours[dataset][model_name] = {
                **run.metrics["evaluation"],
                "latent_dim": run.metrics["latent_dim"],
                "parameters": run.metrics["parameters"],
                "seconds_per_step": run.metrics["training"]["seconds_per_step"],
                "train_seconds": run.metrics["training"]["train_seconds"],
                "steps": steps,
                "best_step": best["step"],
                "best_validation_nll": best["validation_loss"],
                "batch_size": config.batch_size,
                "exact": run.metrics["exact"],
                "run": str(run.out),
                "status": run.status,
            }
    result = {
        "result": NAME,
        "preset": preset,
        "device": str(device),
        "data": [record for _, record, _ in data.values()],
        "stand_in": any(standin is not None for _, _, standin in data.values()),
        "stand_in_datasets": [d for d, (_, _, standin) in data.items() if standin is not None],
        "datasets": list(settings.datasets),
        "paper": {model: {d: list(v) for d, v in row.items()} for model, row in paper.TABLE1.items()},
        "ours": ours,
        "true_density": truth,
        "speed": speed_summary(ours),
        "seconds_this_call": time.perf_counter() - started,
        "settings": {"models": list(settings.models), "model_preset": settings.model_preset,
                     "steps": settings.steps, "model_steps": settings.model_steps,
                     "model_overrides": settings.model_overrides,
                     "tested": "the best-validation weights", "validation_every": VALIDATION_EVERY},
    }
    write_result(out, NAME, result, markdown(result))
    return result


# --------------------------------------------------------------------------------------------
# Speed
# --------------------------------------------------------------------------------------------

FLOWS = ("glow", "f-glow", "nsf", "f-nsf")


def _span(low, high):
    return f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f} to {high:.2f}"


def speed_findings(ours):
    """What the step times say about the paper's speed claims (Sec. 4), as plain values; the
    sentences are :func:`speed_sentences`'.

    Returns ``{"per_dataset", "f_mlp_speed", "f_mlp_vs_vae", "funnel_slowdown"}``: per dataset each
    flow's seconds per step over the F-MLP's, the F-MLP's over the VAE's and each funnel's over
    its baseline's; then, over all datasets (None where no pair was timed), ``f_mlp_speed``:
    ``{"low", "high", "faster", "pairs", "holds", "reached"}`` (the flows' step over the F-MLP's; in
    how many (flow, dataset) pairs the F-MLP is faster; whether it is faster in all (True), none
    (False) or some ("partly"); whether the claimed speed-up is reached), ``f_mlp_vs_vae``:
    ``{"low", "high", "similar"}`` (within a factor of 2) and ``funnel_slowdown``: ``{"low",
    "high", "holds"}`` (the paper's bound on the funnels' extra time kept).
    """
    per_dataset, speedups, vae_ratios, slowdowns = {}, [], [], []
    for dataset, rows in ours.items():
        step = {name: row.get("seconds_per_step") for name, row in rows.items()}
        if not step.get("f-mlp"):
            continue
        entry = {"flow_over_f_mlp": {}, "funnel_over_baseline": {}}
        for flow in FLOWS:
            if step.get(flow):
                entry["flow_over_f_mlp"][flow] = step[flow] / step["f-mlp"]
                speedups.append(step[flow] / step["f-mlp"])
        if step.get("vae"):
            entry["f_mlp_over_vae"] = step["f-mlp"] / step["vae"]
            vae_ratios.append(entry["f_mlp_over_vae"])
        for funnel, baseline in (("f-nsf", "nsf"), ("f-glow", "glow")):
            if step.get(funnel) and step.get(baseline):
                entry["funnel_over_baseline"][funnel] = step[funnel] / step[baseline]
                slowdowns.append(step[funnel] / step[baseline])
        per_dataset[dataset] = entry
    f_mlp_speed = f_mlp_vs_vae = funnel_slowdown = None
    if speedups:
        faster = sum(s > 1 for s in speedups)
        f_mlp_speed = {"low": min(speedups), "high": max(speedups), "faster": faster, "pairs": len(speedups),
                       "holds": True if faster == len(speedups) else False if faster == 0 else "partly",
                       "reached": max(speedups) >= paper.F_MLP_SPEED_UP_CLAIM}
    if vae_ratios:
        f_mlp_vs_vae = {"low": min(vae_ratios), "high": max(vae_ratios),
                        "similar": all(0.5 <= r <= 2 for r in vae_ratios)}
    if slowdowns:
        funnel_slowdown = {"low": min(slowdowns), "high": max(slowdowns),
                           "holds": max(slowdowns) <= paper.FUNNEL_SLOWDOWN_CLAIM}
    return {"per_dataset": per_dataset, "f_mlp_speed": f_mlp_speed, "f_mlp_vs_vae": f_mlp_vs_vae,
            "funnel_slowdown": funnel_slowdown}


def speed_sentences(findings):
    """The sentences of :func:`speed_findings`' answers, one per claim that was timed."""
    verdicts = []
    speed = findings["f_mlp_speed"]
    if speed:
        holds = ("holds: the F-MLP is faster than every flow" if speed["holds"] is True
                 else "does not hold: the F-MLP is slower than every flow" if speed["holds"] is False
                 else f"holds only in part: the F-MLP is faster in {speed['faster']} of {speed['pairs']} "
                      "(flow, dataset) pairs")
        verdicts.append(
            f"F-MLP vs the flows: a training step of the flows takes {_span(speed['low'], speed['high'])} times the "
            f"F-MLP's here (paper: the F-MLP is up to {paper.F_MLP_SPEED_UP_CLAIM:g} times faster). Who is faster: "
            f"the claim {holds}; how much: a speed-up of {paper.F_MLP_SPEED_UP_CLAIM:g} is "
            f"{'reached' if speed['reached'] else 'not reached'}."
        )
    vae = findings["f_mlp_vs_vae"]
    if vae:
        similar = "similar, within a factor of 2, as the paper says" if vae["similar"] else "not within a factor of 2 of it"
        verdicts.append(f"F-MLP vs the VAE: a step of the F-MLP takes {_span(vae['low'], vae['high'])} times the VAE's "
                        f"({similar}).")
    slowdown = findings["funnel_slowdown"]
    if slowdown:
        holds = "holds" if slowdown["holds"] else "does not hold"
        verdicts.append(
            f"Funnels vs their baselines: a step of F-NSF/F-GLOW takes {_span(slowdown['low'], slowdown['high'])} "
            f"times NSF's/GLOW's (paper: up to {paper.FUNNEL_SLOWDOWN_CLAIM:.1f}); the paper's bound of "
            f"{100 * (paper.FUNNEL_SLOWDOWN_CLAIM - 1):.0f}% more time {holds} here."
        )
    return verdicts


def speed_summary(ours):
    """Per dataset: each model's seconds per step over the F-MLP's, the funnels' over their
    baselines', and sentences saying whether the paper's claims hold here
    (:func:`speed_findings` decides, :func:`speed_sentences` says it)."""
    findings = speed_findings(ours)
    return {"per_dataset": findings["per_dataset"], "verdicts": speed_sentences(findings)}


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------

def markdown(result):
    """Table 1 beside ours, sizes and times, the speed verdicts, and the data used."""
    datasets = result["datasets"]
    names = {d: TABULAR_DATASETS[d].name for d in datasets}
    standin = result["stand_in"]
    lines = [
        f"# Table 1: test log-likelihood in nats (higher is better), mean +- 2 s.e. ({result['preset']} preset)",
        "",
        "Data:",
        *[data_line(record) for record in result["data"]],
        "",
    ]
    if standin:
        lines += ["**Stand-in data**: the kit's numbers below are on synthetic stand-ins of the same dimension, "
                  "not on the paper's data. Compare the models with each other and with the stand-in's true "
                  "density, not with the paper's column.", ""]
    header = ["model"]
    for d in datasets:
        header += [f"{names[d]} paper", f"{names[d]} ours" + (" (stand-in)" if d in result["stand_in_datasets"] else "")]
    rows = []
    for model in result["settings"]["models"]:
        row = [model.upper() + (" (ELBO, a bound)" if model == "vae" else "")]
        for d in datasets:
            cell = pm(*paper.TABLE1[model][d])
            ours = result["ours"][d][model]
            row += [f"**{cell}**" if (model, d) in paper.TABLE1_BOLD else cell, pm(ours["ll"], ours["ll_2se"])]
        rows.append(row)
    if result["true_density"]:
        row = ["true density (stand-in)"]
        for d in datasets:
            t = result["true_density"].get(d)
            row += ["-", pm(t["ll"], t["ll_2se"]) if t else "-"]
        rows.append(row)
    lines += [table(header, rows, "l" + "r" * (len(header) - 1)), ""]
    lines += ["Bold: the paper's best per column. The paper's errors are two standard errors of the mean "
              "(its caption says 'standard deviations').", ""]

    lines += ["## Sizes and speed (ours)", ""]
    header = ["dataset", "model", "latent (paper)", "latent (ours)", "parameters", "s / step", "steps",
              "best step", "batch", "status"]
    rows = []
    for d in datasets:
        for model in result["settings"]["models"]:
            r = result["ours"][d][model]
            reduced = model.startswith("f-") or model == "vae"
            paper_latent = paper.TABLE5_DIMENSION[d] - (paper.TABLE5_REDUCTION[d] if reduced else 0)
            rows.append([names[d], model.upper(), paper_latent, r["latent_dim"], count(r["parameters"]),
                         "-" if r["seconds_per_step"] is None else f"{r['seconds_per_step']:.4f}", count(r["steps"]),
                         count(r.get("best_step")), r["batch_size"], r["status"]])
    lines += [table(header, rows, "llrrrrrrrl"), ""]
    if any(result["ours"][d][m].get("best_step") is not None for d in datasets for m in result["ours"][d]):
        lines += ["Tested: each model's weights of its best validation loss (the whole validation split, at the step "
                  "in 'best step'), as NSF's and the authors' uci.py reload their best-validation checkpoint.", ""]
    else:
        lines += ["Tested: each model's final weights (these runs predate the best-validation choice).", ""]
    lines += ["Paper's speed claims (Sec. 4):", *[f"- {claim}" for claim in paper.TABLE1_SPEED_CLAIMS], "",
              "Here (median wall time of a training step on this machine, "
              f"{result['device']}):", *[f"- {v}" for v in result["speed"]["verdicts"]], ""]
    return "\n".join(lines)


__all__ = ["CLASSROOM_GLOW_STEPS", "CLASSROOM_STEPS", "PRESETS", "StandIn", "Table1Settings", "load_data", "markdown",
           "reproduce_table1", "speed_findings", "speed_sentences", "speed_summary"]
