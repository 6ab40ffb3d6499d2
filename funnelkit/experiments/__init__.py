"""One entry per paper result, each with a ``quick`` and a ``paper`` preset.

``RESULTS[name](preset=..., out=..., device=...)`` (or, through one signature for all,
:func:`funnelkit.experiments.commands.reproduce`) trains (or loads) what the result needs,
evaluates it and writes ``out/<name>.json`` and ``out/<name>.md`` (the paper's numbers beside
ours, the data named, stand-ins labelled) and its figures. ``DESCRIPTIONS`` says what each is.

Each result module (``fig2``, ``table1`` ... ``table4``, ``table8``, ``fig4``) imports only shared
parts, never another result: ``runs`` (training runs), ``results`` (result files),
``paper_numbers``, ``four_circles`` (Fig. 2's models), ``tabular_runs`` (Table 1's data and settings),
``image_runs`` (the image models of Table 2, Table 3 and Fig. 4) and ``anomaly_runs`` (the anomaly
models of Tables 4 and 8). ``commands`` (what ``funnelkit train|eval|sample|reproduce`` do) trains
each experiment through its one object (``trainable``, ``four_circles_experiment``, ``tabular_runs``,
``image_experiments``), over the same shared parts.
"""

from . import four_circles, image_runs
from .fig2 import reproduce_fig2
from .fig4 import reproduce_fig4
from .table1 import NAME as TABLE1_RUNS
from .table1 import reproduce_table1
from .table2 import reproduce_fig3, reproduce_table2
from .table3 import reproduce_table3
from .table4 import NAME as TABLE4_RUNS
from .table4 import reproduce_table4
from .table8 import reproduce_table8

RESULTS = {
    "fig2": reproduce_fig2,
    "table1": reproduce_table1,
    "table2": reproduce_table2,
    "fig3": reproduce_fig3,
    "table3": reproduce_table3,
    "fig4": reproduce_fig4,
    "table4": reproduce_table4,
    "table8": reproduce_table8,
}

#: The options of ``funnelkit reproduce`` each result takes, beside ``preset``, ``out``, ``device``
#: and ``progress`` (:func:`funnelkit.experiments.commands.reproduce` checks a call against it;
#: a test checks it against the entries).
OPTIONS = {
    "fig2": (),
    "table1": ("root", "runs", "steps"),
    "table2": ("root", "runs", "steps", "download"),
    "fig3": ("root", "runs", "steps", "download"),
    "table3": ("root", "runs", "inception_weights", "steps", "download"),
    "fig4": ("root", "runs", "steps", "download"),
    "table4": ("root", "runs", "steps", "download"),
    "table8": (),
}

#: The run folders a result trains in, ``RUNS/<name>-<preset>`` (Table 2, Fig. 3, Table 3 and
#: Fig. 4 share the image runs); the results without runs are not listed.
RUN_GROUPS = {
    "table1": TABLE1_RUNS,
    "table2": image_runs.RUNS_NAME,
    "fig3": image_runs.RUNS_NAME,
    "table3": image_runs.RUNS_NAME,
    "fig4": image_runs.RUNS_NAME,
    "table4": TABLE4_RUNS,
}

DESCRIPTIONS = {
    "fig2": "Fig. 2 and Fig. 5: F-NSF and NSF on four circles, beside the true density",
    "table1": "Table 1: test log-likelihood of six models on the MAF tabular sets, and the speed claims",
    "table2": "Table 2 (and Fig. 3): bits/dim and latent size of NSF, F-NSF and VAE on images",
    "fig3": "Fig. 3: a grid of F-NSF samples (the Table 2 model)",
    "table3": "Table 3: IS and FID of samples (Inception: needs --inception-weights; MNIST: the kit's digit metric)",
    "fig4": "Fig. 4: samples of F-NSF, VAE and NSF at temperatures 0.5, 0.75, 1 (MNIST: with the digit metric)",
    "table4": "Table 4: anomaly detection, MNIST vs Fashion-MNIST: bits/dim, ratio, AUROC, ROC curves",
    "table8": "Table 8: parameter counts of the anomaly models (no training)",
}

__all__ = ["DESCRIPTIONS", "OPTIONS", "RESULTS", "RUN_GROUPS", "four_circles", "reproduce_fig2", "reproduce_fig3", "reproduce_fig4",
           "reproduce_table1", "reproduce_table2", "reproduce_table3", "reproduce_table4", "reproduce_table8"]
