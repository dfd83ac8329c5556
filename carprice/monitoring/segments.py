"""The champion's error on new listings by segment (body type, make): a market shift can hit one segment (SUVs)
while the overall error barely moves. Pure functions of the monitored frame; nothing here imports Dagster."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

TARGET, PREDICTION = "market_price", "predicted_price"


def segment_errors(frame: pd.DataFrame, columns: Sequence[str], min_rows: int,
                   reference_mape: float | None = None) -> list[dict]:
    """MAE and MAPE of the predictions in each segment of ``columns`` with at least ``min_rows`` priced rows.

    Args:
        frame: Rows with ``market_price`` (the asking price, the label), ``predicted_price`` and the segment columns.
        columns: Segment columns, e.g. ``("body", "make")``; a missing column is skipped.
        min_rows: Smaller segments are left out (their error is noise).
        reference_mape: The model's own evaluation MAPE; each segment's ``vs_model`` is its MAPE relative to it.

    Returns:
        One dict per segment (``column``, ``segment``, ``n``, ``mae``, ``mape``, ``vs_model``), worst MAPE first.
    """
    priced = frame[frame[TARGET].notna() & frame[PREDICTION].notna() & (frame[TARGET] > 0)]
    abs_err = (priced[PREDICTION] - priced[TARGET]).abs()
    ape = abs_err / priced[TARGET]
    out = []
    for column in columns:
        if column not in priced.columns:
            continue
        groups = priced[column].astype("object").where(priced[column].notna(), "unknown")
        for segment, index in groups.groupby(groups).groups.items():
            if len(index) < min_rows:
                continue
            mape = float(ape.loc[index].mean())
            out.append({"column": column, "segment": str(segment), "n": len(index),
                        "mae": float(abs_err.loc[index].mean()), "mape": mape,
                        "vs_model": mape / reference_mape - 1 if reference_mape else None})
    return sorted(out, key=lambda s: (-s["mape"], s["column"], s["segment"]))


def worst_segment(segments: list[dict]) -> dict | None:
    """The segment with the highest MAPE, or None."""
    return max(segments, key=lambda s: s["mape"], default=None)
