"""Judge the newest challenger against the champion on the same fresh data, then promote or reject it.

The evaluation rows are the admitted listings neither model trained on: listed on or after both training
cutoffs when both models were split by listing date; otherwise the rows each model's own split held out
(by first-seen time, or at random by car) or that arrived after it was trained, for both models at once.
Baselines are fit on the other rows. A fixed backtest refits each model's recipe on earlier periods by
listing date, for the report. A model is promoted only after its artifact loads and predicts in a fresh
process.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from carprice.config import PromotionConfig
from carprice.monitoring.retraining import serve_retraining_requests
from carprice.training import modeling, store
from carprice.training.evaluation import BASELINES, Decision, decide_promotion, score
from carprice.training.registry import (
    NoChampionError,
    RegisteredModel,
    champion,
    held_out_keys,
    latest_challenger,
    promote,
    reject,
)
from carprice.training.serving_check import check_servable
from carprice.training.splitting import GROUPED_RANDOM, LISTING_DATE, Split, never_trained_on
from carprice.warehouse import Warehouse

MIN_EVAL_ROWS = 30
SERVABILITY_SAMPLE = 200


@dataclass
class PromotionResult:
    challenger: str
    champion_before: str | None
    champion_after: str | None
    promoted: bool
    reason: str
    # Evaluation rows were listed on or after it; None when they were not chosen by listing date.
    eval_from: pd.Timestamp | None
    n_eval: int
    scores: dict = field(default_factory=dict)
    requests_answered: int = 0


def _model_scores(model: modeling.PriceModel, rows: pd.DataFrame) -> dict:
    lower, predicted, upper = model.predict_interval(rows)
    return score(rows, predicted, lower, upper)


def backtest(params: dict, features: list[str], data: pd.DataFrame, before: pd.Timestamp, folds: int) -> list[dict]:
    """Refit a recipe on listings before each of ``folds`` equal periods preceding ``before``; score each period."""
    history = data[data["listed_at"] < before].sort_values("listed_at")
    if folds <= 0 or len(history) < 200:
        return []
    edges = history["listed_at"].quantile(np.linspace(0.5, 1.0, folds + 1)).tolist()
    edges[-1] = before
    out = []
    recipe = modeling.recipe_of(params)
    for start, end in itertools.pairwise(edges):
        train, test = history[history["listed_at"] < start], history[(history["listed_at"] >= start)
                                                                       & (history["listed_at"] < end)]
        if len(train) < modeling.MIN_TRAIN_ROWS or len(test) < MIN_EVAL_ROWS:
            continue
        model = modeling.train_model(train, recipe, features)
        out.append({"from": str(pd.Timestamp(start).date()), "to": str(pd.Timestamp(end).date()),
                    **modeling.evaluate(model, test)})
    return out


def _held(split: Split) -> str:
    if split.kind == GROUPED_RANDOM:
        return "held out at random by car"
    if split.kind == LISTING_DATE:
        return f"listed on or after {split.cutoff.date()}"
    return f"first seen on or after {split.cutoff:%Y-%m-%d %H:%M}"


def evaluation_rule(challenger: RegisteredModel, current: RegisteredModel | None) -> str:
    """Which rows the models are judged on, and why, when not simply by listing date ("" when both were split by
    listing date)."""
    if challenger.split.by_listing_date and (current is None or current.split.by_listing_date):
        return ""
    rule = f"listings the challenger held out ({_held(challenger.split)})"
    if current:
        rule += f" that the champion never trained on ({_held(current.split)}, or first seen after it was trained)"
    why = [challenger.split.why] if not challenger.split.by_listing_date else []
    if current and not current.split.by_listing_date:
        why.append(f"when the champion was trained, {current.split.why}")
    return f"{rule}, because {'; '.join(why)}"


def evaluation_rows(data: pd.DataFrame, challenger: RegisteredModel, current: RegisteredModel | None,
                    held_out: dict[str, set[str] | None]) -> pd.Series:
    """True for the rows neither model trained on (``held_out``: each random-split model's held-out listing keys).

    Both models are scored on the same rows, and only on rows neither could have learned: a row one model held out
    but the other trained on would favour the other. Without listing dates, each model's own holdout (by first-seen
    time, or the cars it held out at random) plus the listings that arrived after it was trained is what it never
    saw; a seeded hash picks the random holdout, so successive models hold out mostly the same cars and the
    intersection stays large.
    """
    mask = never_trained_on(data, challenger.split, challenger.trained_at, held_out.get(challenger.version))
    if current:
        mask &= never_trained_on(data, current.split, current.trained_at, held_out.get(current.version))
    return mask


def judge_challenger(wh: Warehouse, data: pd.DataFrame, cfg: PromotionConfig) -> PromotionResult:
    """Score the newest challenger, the champion and the baselines on the same rows; promote or reject."""
    challenger = latest_challenger(wh)
    try:
        current = champion(wh)
    except NoChampionError:
        current = None
    rule = evaluation_rule(challenger, current)
    models = [challenger, current] if current else [challenger]
    unseen = evaluation_rows(data, challenger, current, {m.version: held_out_keys(m) for m in models})
    rows, history = data[unseen], data[~unseen]
    eval_from = None if rule else max(m.split.cutoff for m in models)
    result = PromotionResult(challenger.version, current.version if current else None,
                             current.version if current else None, False, "", eval_from, len(rows))

    def finish(decision: Decision) -> PromotionResult:
        result.promoted, result.reason = decision.promote, decision.reason
        result.scores["decision"] = decision.details
        if decision.promote:
            promote(wh, challenger.version, decision.reason)
            result.champion_after = challenger.version
            result.scores["champion_after"] = result.scores.get("challenger", {})
        else:
            reject(wh, challenger.version, decision.reason)
            result.scores["champion_after"] = result.scores.get("champion", {})
        _record(wh, result)
        # The retraining requests that led here are answered by a model that was judged, promoted or not.
        result.requests_answered = serve_retraining_requests(wh, challenger.version)
        return result

    if len(rows) < MIN_EVAL_ROWS:
        fresh = f"fresh listings since {eval_from.date()}" if eval_from is not None else rule
        return finish(Decision(False, f"only {len(rows)} {fresh}; need {MIN_EVAL_ROWS} to judge"))
    try:
        ch_model = modeling.load_model(challenger.artifact_path, expected_sha256=challenger.sha256)
    except modeling.ModelArtifactError as exc:
        return finish(Decision(False, f"challenger artifact unusable: {exc}"))
    result.scores["challenger"] = _model_scores(ch_model, rows)
    champion_scores = None
    if current:
        cp_model = modeling.load_model(current.artifact_path, expected_sha256=current.sha256)
        champion_scores = result.scores["champion"] = _model_scores(cp_model, rows)
    result.scores["baselines"] = {
        b.name: score(rows, b().fit(history).predict(rows)) for b in BASELINES} if len(history) >= 50 else {}
    if eval_from is None:
        result.scores["backtest"] = {"skipped": "the models were not both split by listing date"}
    else:
        result.scores["backtest"] = {
            "challenger": backtest(challenger.params, challenger.features, data, eval_from, cfg.backtest_folds),
            **({"champion": backtest(current.params, current.features, data, eval_from, cfg.backtest_folds)}
               if current else {}),
        }
    decision = decide_promotion(result.scores["challenger"], champion_scores, result.scores["baselines"], cfg)
    if rule:
        decision = Decision(decision.promote, f"{decision.reason}; evaluated on {len(rows)} {rule}", decision.details)
    if decision.promote:
        sample = rows.head(SERVABILITY_SAMPLE)
        ok, message = check_servable(challenger.artifact_path, challenger.sha256, sample,
                                     ch_model.predict_price(sample))
        decision.details["servability"] = message
        if not ok:
            decision = Decision(False, f"would be promoted ({decision.reason}) but failed the servability check: "
                                       f"{message}", decision.details)
    return finish(decision)


def _record(wh: Warehouse, result: PromotionResult) -> None:
    """Store the judgement, and the challenger's scores on the evaluation rows as its registry metrics."""
    scores = result.scores.get("challenger")
    store.record_evaluation(wh, {
        "challenger": result.challenger, "champion": result.champion_before, "evaluated_at": datetime.now(UTC),
        "eval_from": None if result.eval_from is None else result.eval_from.to_pydatetime(), "n_eval": result.n_eval,
        "scores": json.dumps({k: v for k, v in result.scores.items() if k != "backtest"}, default=str),
        "backtest": json.dumps(result.scores.get("backtest", {}), default=str), "promoted": result.promoted,
        "reason": result.reason,
    }, {"evaluation": scores["overall"], "evaluation_slices": scores["slices"],
        "evaluated_from": None if result.eval_from is None else str(result.eval_from)} if scores else None)
