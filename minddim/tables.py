"""Tables the notebooks print: one row per setting, one column per quantity, a cell either one number or the
values of several seeds shown as ``mean +- spread`` (sample standard deviation, ``ddof = 1``).

The notebooks keep their idea in the cell that computes it and hand the numbers to :func:`table`, so that f-string
formatting does not hide the few lines that carry the idea::

    print(md.table({"eta = 0": [sw0, mmd0], "eta = 1": [sw1, mmd1]}, columns=["SW", "MMD^2 x 1000"],
                   header="setting", digits=2))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch


def _values(cell, where: str) -> np.ndarray | None:
    """A cell's values as a 1-D float array (one value: a plain number); ``None`` for an empty cell."""
    if cell is None:
        return None
    if isinstance(cell, str):
        raise TypeError(f"{where}: a cell holds a number or a sequence of numbers, got the string {cell!r}")
    if isinstance(cell, torch.Tensor):
        cell = cell.detach().cpu().double().numpy()
    try:
        values = np.asarray(cell, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: a cell holds a number or a sequence of numbers, got {cell!r}") from None
    if values.size == 0:
        raise ValueError(f"{where}: a cell needs at least one value (use None for an empty cell)")
    return values


def mean_spread(values, digits: int = 2) -> str:
    """``values`` as ``"mean +- std"`` (std with ``ddof = 1``, the spread over seeds), both to ``digits`` places;
    a single value as just that number. Non-finite values are shown as ``nan`` / ``inf``, never hidden."""
    if not isinstance(digits, int) or isinstance(digits, bool) or not 0 <= digits <= 12:
        raise ValueError(f"digits must be an integer from 0 to 12, got {digits!r}")
    v = _values(values, "values")
    if v is None:
        return ""
    if v.size == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} +- {v.std(ddof=1):.{digits}f}"


def table(rows: Mapping[str, Sequence], columns: Sequence[str], *, header: str = "", digits=2,
          title: str | None = None) -> str:
    """The rows as aligned text: ``rows`` maps a row's label to its cells, one per column; a cell is a number, the
    values of several seeds (shown as ``mean +- std``, :func:`mean_spread`), or ``None`` (left blank).

    ``digits`` is one number of decimal places for every column, or a sequence with one per column. ``header``
    heads the label column; ``title`` (optional) is printed above the table, e.g. what the spread is over.
    Returns the text; ``print`` it."""
    columns = [str(c) for c in columns]
    if not columns:
        raise ValueError("columns must name at least one column")
    if not isinstance(rows, Mapping) or not rows:
        raise ValueError("rows must be a non-empty mapping from a row's label to its cells")
    places = list(digits) if isinstance(digits, Sequence) and not isinstance(digits, str) else [digits] * len(columns)
    if len(places) != len(columns):
        raise ValueError(f"digits has {len(places)} entries for {len(columns)} columns")
    body = []
    for label, cells in rows.items():
        if isinstance(cells, (str, bytes)) or not isinstance(cells, (Sequence, np.ndarray, torch.Tensor)):
            raise TypeError(f"rows[{label!r}] must be a sequence of cells, one per column, got {cells!r}")
        cells = list(cells)
        if len(cells) != len(columns):
            raise ValueError(f"rows[{label!r}] has {len(cells)} cells for {len(columns)} columns")
        body.append([str(label)] + [mean_spread(c, p) if c is not None else "" for c, p in zip(cells, places)])
    head = [header] + columns
    widths = [max(len(r[j]) for r in body + [head]) for j in range(len(head))]
    line = lambda r: "  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]).rstrip()
    out = ([title] if title else []) + [line(head)] + [line(r) for r in body]
    return "\n".join(out)

