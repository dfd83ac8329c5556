"""Value listings with a trained model, and find the ones offered clearly below market value."""

from __future__ import annotations

import pandas as pd

from carprice.training.modeling import PriceModel


def value_listings(model: PriceModel, features: pd.DataFrame, model_version: str) -> pd.DataFrame:
    """Per listing: asking price, predicted price with its interval (market currency), their ratio and the saving."""
    lower, predicted, upper = model.predict_interval(features)
    out = pd.DataFrame({
        "url": features["url"].to_numpy(),
        "asking_price": features["market_price"].to_numpy(),
        "predicted_price": predicted.round(0),
        "lower_price": lower.round(0),
        "upper_price": upper.round(0),
    })
    out["price_ratio"] = out["asking_price"] / out["predicted_price"]
    out["saving"] = out["predicted_price"] - out["asking_price"]
    out["model_version"] = model_version
    return out


def no_valuations() -> pd.DataFrame:
    """The valuations table with no rows (before any model serves), typed as ``value_listings`` makes it."""
    columns = {"url": "string", "asking_price": "float64", "predicted_price": "float64",
               "lower_price": "float64", "upper_price": "float64", "price_ratio": "float64",
               "saving": "float64", "model_version": "string"}
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def find_deals(valuations: pd.DataFrame, listings: pd.DataFrame) -> pd.DataFrame:
    """Listings asking less than the lower end of their predicted interval, biggest expected saving first.

    ``listings`` supplies the description columns (title, make, model, year, mileage) by ``url``.
    """
    below = valuations[valuations["asking_price"] < valuations["lower_price"]]
    deals = below.merge(listings, on="url", how="left")
    deals = deals.assign(below_lower_bound=deals["lower_price"] - deals["asking_price"])
    return deals.sort_values("saving", ascending=False).reset_index(drop=True)


def deals_table(deals: pd.DataFrame) -> str:
    """Deals as a Markdown table linking each listing, with asking, predicted price and saving (market currency)."""
    return "\n".join(["| listing | asking | predicted | saving |", "|---|---:|---:|---:|"] + [
        f"| [{r.title}]({r.url}) | {r.asking_price:,.0f} | {r.predicted_price:,.0f} | {r.saving:,.0f} |"
        for r in deals.itertuples()])
