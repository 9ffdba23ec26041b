"""md.table and md.mean_spread: the numbers a notebook prints in its tables, as the text says they are."""

import numpy as np
import pytest
import torch

import minddim as md


def test_mean_spread_is_the_mean_and_the_sample_standard_deviation():
    values = [1.0, 2.0, 4.0]                     # mean 7/3, std (ddof 1) sqrt(7/3) = 1.5275...
    assert md.mean_spread(values, 3) == "2.333 +- 1.528"
    assert md.mean_spread(torch.tensor(values), 1) == "2.3 +- 1.5"
    assert md.mean_spread(np.array([0.5]), 2) == "0.50"           # one value: no spread to show
    assert md.mean_spread(3, 0) == "3"
    assert md.mean_spread([1.0, float("nan")], 2) == "nan +- nan"  # never hidden


def test_table_aligns_labels_and_cells_and_leaves_none_blank():
    text = md.table({"eta = 0": [[1.0, 2.0, 4.0], 0.5], "eta = 1": [[10.0, 12.0, 14.0], None]},
                    columns=["SW", "MMD^2"], header="setting", digits=[2, 3], title="3 seeds")
    lines = text.splitlines()
    assert lines[0] == "3 seeds"
    assert lines[1].split() == ["setting", "SW", "MMD^2"]
    assert lines[2].split() == ["eta", "=", "0", "2.33", "+-", "1.53", "0.500"]
    assert lines[3].split() == ["eta", "=", "1", "12.00", "+-", "2.00"]
    assert len({len(line) for line in lines[1:3]}) == 1           # the columns line up
    assert lines[2].index("+-") == lines[3].index("+-")


@pytest.mark.parametrize("kwargs, message", [
    (dict(rows={"a": [1.0]}, columns=[]), "columns"),
    (dict(rows={}, columns=["x"]), "rows"),
    (dict(rows={"a": [1.0, 2.0]}, columns=["x"]), "rows['a'] has 2 cells for 1 columns"),
    (dict(rows={"a": [1.0]}, columns=["x"], digits=[1, 2]), "digits has 2 entries"),
    (dict(rows={"a": [1.0]}, columns=["x"], digits=-1), "digits"),
    (dict(rows={"a": [[]]}, columns=["x"]), "at least one value"),
])
def test_bad_tables_say_which_argument(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        md.table(**kwargs)


@pytest.mark.parametrize("rows", [{"a": "1.0"}, {"a": 1.0}, {"a": ["x"]}])
def test_cells_that_are_not_numbers_are_a_type_error(rows):
    with pytest.raises(TypeError, match="rows|cell"):
        md.table(rows, columns=["x"])
