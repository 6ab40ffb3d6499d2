"""The paper's numbers as data: complete, and consistent with each other where the paper's text
implies a relation (ratios, latent sizes, dimensions), so a typo in the copy would show."""

import pytest

from funnelkit.data.tabular import TABULAR_DATASETS
from funnelkit.experiments import paper_numbers as paper


def test_table1_is_complete_and_bold_marks_point_at_entries():
    assert set(paper.TABLE1) == set(paper.TABLE1_MODELS)
    for row in paper.TABLE1.values():
        assert set(row) == set(paper.TABLE1_DATASETS)
        assert all(error > 0 for _, error in row.values())
    assert paper.TABLE1["nsf"]["power"] == (0.63, 0.01) and paper.TABLE1["f-glow"]["bsds300"] == (155.85, 0.85)
    assert all(model in paper.TABLE1 and dataset in paper.TABLE1_DATASETS for model, dataset in paper.TABLE1_BOLD)
    # Table 5's dimensions are the MAF sets' dimensions
    assert paper.TABLE5_DIMENSION == {name: info.dim for name, info in TABULAR_DATASETS.items()}


def test_table2_latent_sizes_are_the_data_dimension_or_a_sixteenth():
    dims = {"cifar10": 3 * 32 * 32, "imagenet64": 3 * 64 * 64}
    for column in paper.TABLE2_COLUMNS:
        d = dims[column.split("-")[0]]
        assert paper.TABLE2["nsf"][column][1] == paper.TABLE2["baseline"][column][1] == d
        assert paper.TABLE2["f-nsf"][column][1] == paper.TABLE2["vae"][column][1] == d // 16
    assert paper.TABLE2["f-nsf"]["cifar10-5"][0] == 1.71


def test_table4_ratios_are_the_quotients_of_the_printed_means():
    for (model, latent), (mnist, fashion, ratio) in paper.TABLE4.items():
        # the means are rounded to 0.01, so the quotient is known to about 0.01 * (1 + ratio) / mnist
        assert ratio == pytest.approx(fashion / mnist, abs=0.006 * (1 + ratio) / mnist + 0.005), (model, latent)


def test_table3_and_table8_hold_the_paper_values():
    assert paper.TABLE3["f-nsf"] == (4.95, 45.52) and paper.TABLE3["vae"] == (1.00, 745.0)
    assert set(paper.TABLE3_MODELS) <= set(paper.TABLE3)
    assert paper.TABLE8[("f-nsf", 4)] == 7_286_164 and len(paper.TABLE8) == 7 and paper.TABLE8[("nsf", None)] == 4_724_430
    assert {name for name, _ in paper.TABLE8} == {name for name, _ in paper.TABLE4}
