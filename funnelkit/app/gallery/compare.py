"""Comparing image runs: the F-NSF, NSF and VAE of one data set, bit depth and latent size side by
side, and their metrics table, read from each run's ``metrics.json``."""

from dataclasses import dataclass

from .names import DATASET_NAMES, MODEL_NAMES, MODEL_ORDER, run_order


@dataclass(frozen=True)
class Comparison:
    """Runs of one data set, bit depth and latent size side by side (NSF keeps every dimension,
    so it joins each latent size of its folder)."""

    key: str
    title: str
    runs: tuple


def comparisons(runs):
    """The :class:`Comparison` sets of ``runs``: per source, folder, data set and bit depth, one set
    per latent size of the dimension-reducing models (F-NSF, VAE, F-MLP), with the NSF of that
    folder; models in :data:`MODEL_ORDER`. Where a folder holds two runs of one model at one
    latent size, the newest checkpoint is taken."""
    groups = {}
    for run in runs:
        groups.setdefault((run.source, run.key.split("/", 1)[0], run.group, run.dataset, run.bits), []).append(run)
    out = []
    for (source, prefix, group, dataset, bits), members in groups.items():
        nsf = _newest([r for r in members if r.model == "nsf"])
        reducing = [r for r in members if r.model != "nsf"]
        latents = sorted({r.latent_dim for r in reducing}) or [None]
        for latent in latents:
            same = [r for r in reducing if r.latent_dim == latent]
            chosen = {model: _newest([r for r in same if r.model == model]) for model in {r.model for r in same}}
            if nsf is not None:
                chosen["nsf"] = nsf
            if not chosen:
                continue
            ordered = tuple(sorted(chosen.values(), key=lambda r: MODEL_ORDER.index(r.model)
                                   if r.model in MODEL_ORDER else 99))
            data = f"{DATASET_NAMES.get(dataset, dataset)} {bits}-bit"
            where = "/".join(p for p in (prefix, group) if p)
            latent_text = f", latent {latent:,}" if latent is not None else ""
            names = ", ".join(MODEL_NAMES.get(r.model, r.model) for r in ordered)
            key = f"{where}/{dataset}{bits}" + (f"-latent{latent}" if latent is not None else "")
            title = f"{data}{latent_text}: {names} ({source}, {group or prefix})"
            out.append((run_order(ordered[0])[:4] + (latent or 0, key), Comparison(key, title, ordered)))
    return [comparison for _, comparison in sorted(out, key=lambda pair: pair[0])]


def _newest(runs):
    return max(runs, key=lambda r: r.stamp) if runs else None


def find_comparison(sets, key):
    """The set named ``key`` among ``sets``; a ValueError naming the sets there are otherwise."""
    for comparison in sets:
        if comparison.key == key:
            return comparison
    known = ", ".join(repr(c.key) for c in sets) or "none"
    raise ValueError(f"unknown comparison {key!r}; expected one of {known}")


def metrics_rows(runs):
    """One dict per run for a table: model, likelihood (exact or a bound), bits/dim and two
    standard errors, latent size, parameters, training steps and seconds, what it was
    evaluated on, and the run. Numbers stay numbers (None where the run has none)."""
    rows = []
    for run in runs:
        key = run.metrics.get("evaluation_key") or {}
        test = key.get("test") or key.get("in")
        n = run.evaluation.get("n", run.evaluation.get("n_in"))
        rows.append({
            "model": MODEL_NAMES.get(run.model, run.model),
            "likelihood": "exact" if run.exact else "bound (ELBO)",
            "bits/dim": run.bpd,
            "± 2 s.e.": run.bpd_2se,
            "latent size": run.latent_dim,
            "of dimensions": run.data_dim or None,
            "parameters": run.parameters,
            "training steps": run.training.get("steps"),
            "training seconds": run.training.get("train_seconds"),
            "evaluated on": f"{test} ({n:,} images)" if test and n else (test or "-"),
            "run": run.key,
        })
    return rows


__all__ = ["Comparison", "comparisons", "find_comparison", "metrics_rows"]
