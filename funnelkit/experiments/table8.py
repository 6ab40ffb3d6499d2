"""Table 8: parameter counts of the anomaly-detection models of Table 4 (paper A.9), beside the
paper's, with the relative difference (ours - paper) / paper. Nothing is trained.

Both presets count the **paper-preset** models (:func:`funnelkit.models.anomaly.anomaly_model`,
``preset="paper"``), since Table 8 is about the paper's models; the quick preset also lists the
quick models that Table 4's quick run trains, for reference. The paper lists the NSF's latent
size as 768; a dimension-preserving flow on 28 x 28 images keeps all 784 values.

Where the counts differ, the reasons are recorded in :mod:`funnelkit.models.f_mlp` (the F-MLP's
first layer takes 784 values, where A.9 writes 768) and :mod:`funnelkit.models.anomaly` (the
F-NSF keeps odd image sizes exact instead of zero-padding them), and in ``docs/errata.md``.
"""

import time
from dataclasses import asdict, dataclass

from ..models.anomaly import anomaly_model
from . import paper_numbers as paper
from .anomaly_runs import MODELS, row_key
from .results import count, table, write_result
from .runs import choose_settings

NAME = "table8"


@dataclass(frozen=True)
class Table8Settings:
    models: tuple = MODELS
    also_quick: bool = False  # list the quick models' counts too


PRESETS = {"paper": Table8Settings(), "quick": Table8Settings(also_quick=True)}


def count_parameters(name, latent, preset):
    """Parameters and latent size of one anomaly model as built by the kit."""
    model = anomaly_model(name, latent or 16, preset=preset)
    return model.num_parameters(), model.latent_dim


def reproduce_table8(preset="quick", out="results", device="cpu", progress=True, **overrides):
    """Count the parameters of every Table 4 model; write ``table8.json`` and ``table8.md``.

    ``device`` and ``progress`` are accepted for a uniform call and not used (nothing is trained).
    """
    settings = choose_settings(PRESETS, preset, overrides, NAME)
    started = time.perf_counter()
    ours = {}
    for name, latent in settings.models:
        key = row_key(name, latent)
        parameters, latent_dim = count_parameters(name, latent, "paper")
        theirs = paper.TABLE8.get((name, latent))
        ours[key] = {"model": name, "latent_size": latent, "latent_dim": latent_dim, "parameters": parameters,
                     "paper": theirs,
                     "relative_difference": None if theirs is None else (parameters - theirs) / theirs}
        if settings.also_quick:
            ours[key]["quick_parameters"] = count_parameters(name, latent, "quick")[0]
    result = {
        "result": NAME,
        "preset": preset,
        "data": [],
        "stand_in": False,
        "counted": "paper-preset models" + (" (and the quick ones, for reference)" if settings.also_quick else ""),
        "paper": {row_key(n, ls): p for (n, ls), p in paper.TABLE8.items()},
        "ours": ours,
        "largest_relative_difference": max((abs(r["relative_difference"]) for r in ours.values()
                                            if r["relative_difference"] is not None), default=None),
        "seconds_this_call": time.perf_counter() - started,
        "settings": asdict(settings),
    }
    write_result(out, NAME, result, markdown(result))
    return result


_SHOWN = {"vae": "VAE", "f-nsf": "F-NSF", "f-mlp": "F-MLP", "nsf": "NSF"}


def markdown(result):
    quick = any("quick_parameters" in r for r in result["ours"].values())
    header = ["model", "latent size", "parameters paper", "parameters ours (paper preset)", "difference"]
    header += ["quick preset (Table 4 quick)"] if quick else []
    rows = []
    for row in result["ours"].values():
        difference = "-" if row["relative_difference"] is None else f"{100 * row['relative_difference']:+.1f}%"
        cells = [_SHOWN[row["model"]], row["latent_size"] if row["latent_size"] is not None else f"{row['latent_dim']:,}",
                 count(row["paper"]), count(row["parameters"]), difference]
        rows.append(cells + ([count(row["quick_parameters"])] if quick else []))
    largest = result["largest_relative_difference"]
    lines = [f"# Table 8: parameters of the anomaly-detection models ({result['preset']} preset)", "",
             "No data and no training: the models are built and their parameters counted. Difference: "
             "(ours - paper) / paper.", "",
             table(header, rows, "lrrrr" + ("r" if quick else "")), "",
             "The paper lists the NSF's latent size as 768; a dimension-preserving flow on 28 x 28 images keeps all 784.",
             "" if largest is None else f"Largest relative difference: {100 * largest:.1f}%.", ""]
    return "\n".join(lines)


__all__ = ["PRESETS", "Table8Settings", "count_parameters", "markdown", "reproduce_table8"]
