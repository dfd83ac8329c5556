"""The pages of the report server besides Evidently's: the reports index (one row per batch, by market day, with
trend plots) at its root, the current-model view (``model.html``), and the summary above each quality report.

Rendering is pure (rows in, HTML out); ``write_pages`` reads the warehouse and writes the files, each atomically.
"""

from __future__ import annotations

import json
import math
import os
from datetime import date
from html import escape
from pathlib import Path

import pandas as pd

from carprice.ingest.store import batch_market_days
from carprice.money.rates import BASE
from carprice.monitoring import store
from carprice.training.overview import ModelOverview, coverage_flag, model_overview
from carprice.warehouse import Warehouse

INDEX_PAGE, MODEL_PAGE = "index.html", "model.html"

STYLE = """<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:1300px}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}th,td{border-bottom:1px solid #ddd;padding:.3rem .6rem;
text-align:left;vertical-align:top}td:first-child{white-space:nowrap}td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}
tr.quarantined{background:#fff3e0}.bad{color:#b00020;font-weight:600}.ok{color:#1b5e20}.muted{color:#777}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem}
.card b{display:block;font-size:1.4rem}svg.chart{max-width:640px;width:100%}.axis{stroke:#444}.grid{stroke:#eee}
.tick,.label{font-size:11px;fill:#444}.charts{display:flex;flex-wrap:wrap;gap:1rem}nav a{margin-right:1rem}
</style>"""


def _pct(fraction, digits: int = 1, signed: bool = False) -> str:
    if fraction is None or (isinstance(fraction, float) and math.isnan(fraction)):
        return "–"
    return f"{100 * float(fraction):{'+' if signed else ''}.{digits}f}%"


def _money(value, currency: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value):,.0f} {escape(currency)}"


def _count(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{int(value)}"


def _page(title: str, body: str) -> str:
    nav = f'<nav><a href="{INDEX_PAGE}">Reports index</a><a href="{MODEL_PAGE}">Current model</a></nav>'
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>{STYLE}'
            f"</head><body>{nav}<h1>{escape(title)}</h1>{body}</body></html>")


def short_day(day: date | None) -> str:
    """A market day as a plot label: "11-23"."""
    return day.strftime("%m-%d") if day else "?"


# --- the summary above a quality report -------------------------------------------------------------------------


def segments_table(segments: list[dict], currency: str = BASE) -> str:
    """The champion's error by segment as an HTML table, worst first (segments above the model's own MAPE marked)."""
    if not segments:
        return '<p class="muted">No segment has enough new listings to be judged.</p>'
    rows = "".join(
        f'<tr><td>{escape(s["column"])}</td><td>{escape(s["segment"])}</td><td class="n">{s["n"]}</td>'
        f'<td class="n">{_money(s["mae"], currency)}</td><td class="n">{_pct(s["mape"])}</td>'
        f'<td class="n{" bad" if (s.get("vs_model") or 0) > 0.2 else ""}">{_pct(s.get("vs_model"), 0, True)}</td></tr>'
        for s in segments)
    return ("<table><tr><th>by</th><th>segment</th><th>new listings</th><th>MAE</th><th>MAPE</th>"
            f"<th>vs the model's own MAPE</th></tr>{rows}</table>")


def quality_preamble(summary, currency: str = BASE) -> str:
    """What the quality report is about, above Evidently's dashboard: the champion's error on listings new to it
    against its own evaluation, and by segment (``summary``: a monitoring.drift.MonitoringSummary)."""
    vs = ""
    if summary.reference_mape is not None and summary.mape is not None:
        vs = (f" — its own evaluation gave MAPE {_pct(summary.reference_mape)}, "
              f"MAE {_money(summary.reference_mae, currency)}"
              f"; on new listings it is {_pct(summary.decay, 0, True)} relative to that")
    return ('<section style="font-family:system-ui,sans-serif;margin:1rem 1.5rem;max-width:1100px">'
            f"<p><b>The champion on {summary.n_fresh} listings it never saw:</b> MAE {_money(summary.mae, currency)}, "
            f"MAPE {_pct(summary.mape)}{vs}.</p><h3>Error by segment</h3>"
            f"{segments_table(summary.segment_errors, currency)}</section>"
            .replace("<table>", '<table style="border-collapse:collapse">'))


# --- the reports index --------------------------------------------------------------------------------------------


def index_rows(overview: pd.DataFrame, market_days: dict[str, date], reports_root: Path) -> list[dict]:
    """The index's rows from ``monitoring.store.batch_overview``: newest market day first, report links relative
    to the reports folder (only reports that exist)."""
    rows = []
    for r in overview.to_dict("records"):
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        links = {}
        for name, key in (("drift", "report_path"), ("quality", "quality_report_path")):
            path = clean.get(key)
            if path and Path(path).exists():
                try:
                    links[name] = Path(path).resolve().relative_to(reports_root.resolve()).as_posix()
                except ValueError:
                    continue
        triggers = json.loads(clean["triggers"]) if isinstance(clean.get("triggers"), str) else []
        segments = json.loads(clean["segment_errors"]) if isinstance(clean.get("segment_errors"), str) else []
        rows.append({**clean, "market_day": market_days.get(r["batch_id"]), "links": links,
                     "trigger_kinds": [t["kind"] for t in triggers],
                     "worst_segment": segments[0] if segments else None})
    return sorted(rows, key=lambda r: (r["market_day"] or date.min, str(r["decided_at"])), reverse=True)


def trend_charts(rows: list[dict]) -> str:
    """Drift share, the champion's MAPE on new listings (and its own), and decay, by market day."""
    from carprice.serving.charts import chart

    monitored = [r for r in rows if r["market_day"] and r.get("drift_share") is not None]
    if len(monitored) < 2:
        return '<p class="muted">Trend plots appear once two batches are monitored.</p>'

    def x(r):
        return float(r["market_day"].toordinal())

    def label(t: float) -> str:
        # Ticks fall between days when few days are plotted: only whole days are labelled.
        return short_day(date.fromordinal(round(t))) if abs(t - round(t)) < 1e-6 else ""

    def series(key: str) -> list[tuple[float, float]]:
        return [(x(r), float(r[key])) for r in monitored if r.get(key) is not None]

    def plot(title: str, named: dict[str, str], y_label: str) -> str:
        data = {name: series(key) for name, key in named.items()}
        if not any(data.values()):
            return (f'<p class="muted">{escape(title)}: not judged yet (a batch needs enough listings new to the '
                    "model).</p>")
        return chart(data, title=title, x_label="market day", y_label=y_label, lines=True, y_percent=True,
                     x_format=label)

    return '<div class="charts">' + "".join([
        plot("Feature drift", {"drifted share of feature columns": "drift_share"}, "share"),
        plot("Champion's error", {"MAPE on new listings": "mape", "the model's own evaluation MAPE": "reference_mape"},
             "MAPE"),
        plot("Decay", {"decay (MAPE relative to the model's own)": "decay"}, "relative"),
    ]) + "</div>"


def render_index(rows: list[dict]) -> str:
    """The reports index: trend plots, then one row per batch with its day, verdict, numbers and report links."""
    body = []
    for r in rows:
        quarantined = r["status"] == "quarantined"
        if quarantined:
            verdict = f'<span class="bad">quarantined</span><br><span class="muted">{escape(r["reason"] or "")}</span>'
        else:
            verdict = escape(r["status"])
        drift = (f'{int(r["drifted_columns"])}/{int(r["n_columns"])} ({_pct(r["drift_share"], 0)})'
                 if r.get("drift_share") is not None else "–")
        decay = _pct(r.get("decay"), 0, True)
        if "decay" in r["trigger_kinds"]:
            decay = f'<span class="bad">{decay}</span>'
        worst = r.get("worst_segment")
        worst_text = (f'{escape(worst["column"])}={escape(worst["segment"])} {_pct(worst["mape"])}' if worst else "–")
        links = " ".join(f'<a href="{escape(path)}">{name}</a>' for name, path in r["links"].items()) or "–"
        body.append(
            f'<tr class="{"quarantined" if quarantined else ""}"><td>{r["market_day"] or "?"}</td>'
            f'<td>{escape(r["batch_id"])}</td><td>{verdict}</td><td class="n">{_count(r.get("listings"))}</td>'
            f'<td class="n">{drift}</td><td class="n">{_pct(r.get("mape"))}</td><td class="n">{decay}</td>'
            f'<td>{worst_text}</td><td>{escape(", ".join(r["trigger_kinds"])) or "–"}</td><td>{links}</td></tr>')
    table = ("<table><tr><th>market day</th><th>batch</th><th>verdict</th><th>listings</th><th>drift</th>"
             "<th>MAPE new</th><th>decay</th><th>worst segment</th><th>retraining asked</th><th>reports</th></tr>"
             + "".join(body) + "</table>") if body else '<p class="muted">No batch validated yet.</p>'
    intro = ('<p class="muted">MAPE new: the champion\'s error on the batch\'s listings it never saw; decay: that '
             "error relative to the model's own evaluation MAPE.</p>")
    return _page("Monitoring reports", trend_charts(rows) + intro + table)


# --- the current-model view ---------------------------------------------------------------------------------------


def render_model(view: ModelOverview, coverage_tolerance: float, currency: str = BASE) -> str:
    """The current-model view: the champion's cards, when and why it was promoted, its recent monitoring, and every
    model's judgement."""
    champ = view.champion
    if champ is None:
        body = '<p class="bad">No champion yet: the first model is trained once a batch is admitted.</p>'
    else:
        ev = champ["evaluation"]
        flag = coverage_flag(ev.get("interval_coverage"), view.coverage_target, coverage_tolerance)
        coverage_class = "bad" if flag else "ok"
        cards = [("MAE", _money(ev.get("mae"), currency)), ("median abs % error", _pct(ev.get("median_ape"))),
                 ("MAPE", _pct(ev.get("mape"))), ("R²", f'{ev["r2"]:.3f}' if ev.get("r2") is not None else "–"),
                 (f"{view.coverage_target:.0%} interval covers",
                  f'<span class="{coverage_class}">{_pct(ev.get("interval_coverage"), 0)}</span>'),
                 ("evaluated on", f'{int(ev["n"]) if ev.get("n") else "–"} listings')]
        body = (f'<h2>Champion {escape(champ["version"])}</h2><div class="cards">'
                + "".join(f'<div class="card">{name}<b>{value}</b></div>' for name, value in cards) + "</div>"
                + (f'<p class="bad">⚠ {escape(flag)}</p>' if flag else "")
                + f'<p>Promoted {escape(str(champ["promoted_at"])[:16])}: '
                  f'{escape(champ["promoted_because"] or "")}</p>'
                + f'<p>Trained {escape(str(champ["trained_at"])[:16])} because: '
                  f'{escape(champ["trained_because"] or "")}'
                + f' — {champ["n_train"]} listings from {champ["train_batches"]} batches; code '
                  f'{escape(champ["code_version"])}</p>')
        if view.recent_monitoring:
            rows = "".join(f'<tr><td>{escape(m["batch_id"])}</td><td class="n">{_count(m["n_fresh"])}</td>'
                           f'<td class="n">{_money(m["mae"], currency)}</td><td class="n">{_pct(m["mape"])}</td>'
                           f'<td class="n">{_pct(m["decay"], 0, True)}</td></tr>' for m in view.recent_monitoring)
            body += ("<h3>Since then, on listings new to it</h3><table><tr><th>batch</th><th>new listings</th>"
                     f"<th>MAE</th><th>MAPE</th><th>decay</th></tr>{rows}</table>")
    history = "".join(
        f'<tr><td>{escape(h["version"])}</td><td>{escape(str(h["trained_at"])[:16])}</td>'
        f'<td>{escape(h["trained_because"] or "")}</td>'
        f'<td class="{"ok" if h["decision"] == "promoted" else "bad" if h["decision"] == "rejected" else ""}">'
        f'{escape(h["decision"])}</td><td class="n">{_money(h.get("mae"), currency)}</td>'
        f'<td class="n">{_money(h.get("champion_mae"), currency)}</td><td>{escape(h["reason"])}</td>'
        f'<td>{escape(h["status"])}</td></tr>' for h in view.history)
    body += ("<h2>Challengers</h2><table><tr><th>version</th><th>trained</th><th>trained because</th><th>judgement</th>"
             "<th>its MAE</th><th>champion's MAE then</th><th>why</th><th>status now</th></tr>"
             f"{history}</table>")
    return _page("Current model", body)


# --- writing them -------------------------------------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)  # a reader never sees half a page
    return path


def write_pages(wh: Warehouse, reports_root: Path, coverage_tolerance: float,
                currency: str = BASE) -> dict[str, Path]:
    """Write the reports index and the current-model view into the reports folder from the warehouse as it is."""
    rows = index_rows(store.batch_overview(wh), batch_market_days(wh), reports_root)
    return {"index": _write(reports_root / INDEX_PAGE, render_index(rows)),
            "model": _write(reports_root / MODEL_PAGE, render_model(model_overview(wh), coverage_tolerance,
                                                                         currency))}
