"""Value listings with a trained model: predicted price and how the asking price compares."""

from __future__ import annotations

import pandas as pd

from carprice.modeling import PriceModel


def value_listings(model: PriceModel, features: pd.DataFrame, model_version: str) -> pd.DataFrame:
    """Per listing: asking and predicted price (EUR), their ratio and the saving against the prediction."""
    predicted = model.predict_price(features)
    out = pd.DataFrame({
        "url": features["url"].to_numpy(),
        "asking_price_eur": features["price_eur"].to_numpy(),
        "predicted_price_eur": predicted.round(0),
    })
    out["price_ratio"] = out["asking_price_eur"] / out["predicted_price_eur"]
    out["saving_eur"] = out["predicted_price_eur"] - out["asking_price_eur"]
    out["model_version"] = model_version
    return out
