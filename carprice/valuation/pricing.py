"""Value listings with a trained model, and find the ones offered clearly below market value."""

from __future__ import annotations

import pandas as pd

from carprice.training.modeling import PriceModel


def value_listings(model: PriceModel, features: pd.DataFrame, model_version: str) -> pd.DataFrame:
    """Per listing: asking price, predicted price with its interval (EUR), their ratio and the saving."""
    lower, predicted, upper = model.predict_interval(features)
    out = pd.DataFrame({
        "url": features["url"].to_numpy(),
        "asking_price_eur": features["price_eur"].to_numpy(),
        "predicted_price_eur": predicted.round(0),
        "lower_price_eur": lower.round(0),
        "upper_price_eur": upper.round(0),
    })
    out["price_ratio"] = out["asking_price_eur"] / out["predicted_price_eur"]
    out["saving_eur"] = out["predicted_price_eur"] - out["asking_price_eur"]
    out["model_version"] = model_version
    return out


def no_valuations() -> pd.DataFrame:
    """The valuations table with no rows (before any model serves), typed as ``value_listings`` makes it."""
    columns = {"url": "string", "asking_price_eur": "float64", "predicted_price_eur": "float64",
               "lower_price_eur": "float64", "upper_price_eur": "float64", "price_ratio": "float64",
               "saving_eur": "float64", "model_version": "string"}
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def find_deals(valuations: pd.DataFrame, listings: pd.DataFrame) -> pd.DataFrame:
    """Listings asking less than the lower end of their predicted interval, biggest expected saving first.

    ``listings`` supplies the description columns (title, make, model, year, mileage) by ``url``.
    """
    below = valuations[valuations["asking_price_eur"] < valuations["lower_price_eur"]]
    deals = below.merge(listings, on="url", how="left")
    deals = deals.assign(below_lower_bound_eur=deals["lower_price_eur"] - deals["asking_price_eur"])
    return deals.sort_values("saving_eur", ascending=False).reset_index(drop=True)


def deals_table(deals: pd.DataFrame) -> str:
    """Deals as a Markdown table linking each listing, with asking, predicted price and saving in EUR."""
    return "\n".join(["| listing | asking | predicted | saving |", "|---|---:|---:|---:|"] + [
        f"| [{r.title}]({r.url}) | {r.asking_price_eur:,.0f} | {r.predicted_price_eur:,.0f} | {r.saving_eur:,.0f} |"
        for r in deals.itertuples()])
