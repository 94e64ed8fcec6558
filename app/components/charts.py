"""Plotly figures: the overview's health bars, an account's history (with its
liquidations), the stress curve and the alert timeline. Pure builders (data in, figure
out), so they are testable and fast."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import tzinfo
from statistics import NormalDist

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.components import fmt
from app.components.levels import COLORS, NOT_WATCHED, STALE
from app.components.safe import svg
from margin.danger import DangerLimits

LIQUIDATION = "#7f0000"


def sigma_for_chance(chance: float, horizon_hours: float = 24.0) -> float:
    """The distance (in daily σ) at which the chance of touching a price within the horizon
    is `chance`: 2 Φ(−z) = chance for Brownian motion without drift, z in horizon σ."""
    z = NormalDist().inv_cdf(1.0 - min(max(chance, 1e-12), 1.0) / 2.0)
    return z * math.sqrt(horizon_hours / 24.0)


def danger_bars(frame: pd.DataFrame, limits: DangerLimits) -> go.Figure:
    """One horizontal bar per account, in the overview's order (worst on top): its distance
    to the nearest liquidation price in daily σ, coloured by its level, with the σ at which
    the warning and critical chances are reached. What separates the accounts is how far
    they are in the market's own units, not a health number that sits near the top for every
    leveraged book. An account without a σ yet is placed by its distance, scaled so that the
    distance thresholds fall on the same lines; one not watched sits greyed at the cap."""
    warning_sigma = sigma_for_chance(limits.warning_chance, limits.horizon_hours)
    critical_sigma = sigma_for_chance(limits.critical_chance, limits.horizon_hours)
    cap = max(6.0, warning_sigma * 3)
    labels, widths, texts, colors = [], [], [], []
    for row in frame.itertuples():
        labels.append(svg(row.account))  # Plotly reads <a href> in chart text: names are escaped
        colors.append(COLORS[row.level])
        distance = None if pd.isna(row.nearest_distance) else float(row.nearest_distance)
        sigma = None if pd.isna(row.nearest_sigma) else float(row.nearest_sigma)
        if row.level in (STALE, NOT_WATCHED):
            widths.append(cap)
            texts.append(svg(row.data))
        elif distance is None:
            widths.append(cap)
            texts.append("no liquidation price")
        elif sigma is not None:
            widths.append(min(max(sigma, 0.0), cap))
            chance = "" if pd.isna(row.touch_probability) else f" · {fmt.chance(row.touch_probability)} in 24 h"
            texts.append(f"{fmt.percent(distance)} · {sigma:.1f} σ{chance}")
        else:
            scaled = distance / limits.warning_distance * warning_sigma if limits.warning_distance else cap
            widths.append(min(max(scaled, 0.0), cap))
            texts.append(f"{fmt.percent(distance)} (no σ yet)")
    fig = go.Figure(
        go.Bar(
            x=widths,
            y=labels,
            orientation="h",
            marker_color=colors,
            text=texts,
            textposition="auto",
            opacity=1.0,
            hovertemplate="%{y}: %{text}<extra></extra>",
            cliponaxis=False,
        )
    )
    lines = (
        (critical_sigma, f"critical ({fmt.chance(limits.critical_chance)})", COLORS["critical"]),
        (warning_sigma, f"warning ({fmt.chance(limits.warning_chance)})", COLORS["warning"]),
    )
    for value, name, color in lines:
        fig.add_vline(
            x=value,
            line_dash="dash",
            line_color=color,
            annotation_text=name,
            annotation_position="top",
            annotation_font_color=color,
        )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(
        title=f"distance to the nearest liquidation price, in daily σ (lines: chance in {limits.horizon_hours:g} h)",
        range=[0, cap * 1.02],
    )
    fig.update_layout(height=110 + 26 * len(labels), margin={"l": 10, "r": 10, "t": 30, "b": 60}, showlegend=False)
    return fig


def _bands(fig: go.Figure, critical: float, warning: float, **where: int) -> None:
    """The critical and warning bands and the liquidation line, on a log health axis
    (`where`: row and col of a subplot)."""
    fig.add_hrect(y0=0.0001, y1=critical, fillcolor=COLORS["critical"], opacity=0.10, line_width=0, **where)
    fig.add_hrect(y0=critical, y1=warning, fillcolor=COLORS["warning"], opacity=0.10, line_width=0, **where)
    fig.add_hline(y=1.0, line_color=LIQUIDATION, line_dash="dash", **where)
    # placed by hand: on a log axis plotly puts an hline's own annotation at the wrong height
    fig.add_annotation(
        text="liquidation (1)",
        xref="paper",
        x=0.0,
        yref="y",
        y=0.0,
        showarrow=False,
        xanchor="left",
        yanchor="bottom",
        font={"color": LIQUIDATION, "size": 11},
    )


NICE_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 1.5, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 1e4, 1e5)


def _log_axis(values: Sequence[float], low: float, high: float, title: str) -> dict:
    """A log health axis over the data and [low, high], ticked at round values (plotly's
    own log ticks label every minor step and crowd the liquidation line)."""
    finite = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    lo = min([low, *finite]) * 0.75
    hi = max([high, *finite]) * 1.1
    ticks = [t for t in NICE_TICKS if lo <= t <= hi]
    top = max(finite, default=None)
    if top is not None and ticks and top > ticks[-1] * 1.15:  # the line's own top is labelled, not left above the ticks
        ticks.append(float(f"{top:.2g}"))
    return {
        "title": title,
        "type": "log",
        "range": [math.log10(lo), math.log10(hi)],
        "tickvals": ticks,
        "ticktext": [f"{t:g}" for t in ticks],
    }


def _local(values: pd.Series, zone: tzinfo) -> pd.Series:
    return pd.to_datetime(values, utc=True).dt.tz_convert(zone).dt.tz_localize(None)


def _liquidation_marks(fig: go.Figure, events: pd.DataFrame, zone: tzinfo, top: float) -> None:
    """A dotted vertical line at each liquidation, and a marker at the top of the health
    axis that carries the hover text (a shape has none)."""
    times = _local(events["occurred_at"], zone)
    for moment in times:
        fig.add_vline(x=moment, line_color=LIQUIDATION, line_dash="dot", line_width=1.5, row=1, col=1)
    texts = [svg(f"LIQUIDATED {e.symbol} {e.side} at {fmt.price(e.price)} ({e.source})") for e in events.itertuples()]
    fig.add_trace(
        go.Scatter(
            x=times,
            y=[top] * len(events),
            mode="markers",
            name="liquidation",
            marker={"symbol": "triangle-down", "size": 13, "color": LIQUIDATION},
            text=texts,
            hovertemplate="%{text}<extra></extra>",
        ),
        row=1,
        col=1,
    )


def history_figure(
    frame: pd.DataFrame,
    zone: tzinfo,
    critical: float,
    warning: float,
    collateral: str,
    events: pd.DataFrame | None = None,
) -> go.Figure:
    """Two charts on one time axis: health (worst per bucket, log scale) with the warning
    and critical bands above, the equity below on its own axis (one axis per figure: the
    equity line never crosses the bands). Liquidation `events` (occurred_at, symbol, side,
    price, source) as marked vertical lines. The window is the page's one selector."""
    times = _local(frame["at"], zone)
    health = frame["min_health"].clip(lower=0.01)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.68, 0.32], vertical_spacing=0.06)
    mode = "lines+markers" if len(frame) < 60 else "lines"  # a young account's few points stay visible
    fig.add_trace(
        go.Scatter(x=times, y=health, name="health (min)", mode=mode, line={"color": "#1f77b4"}, connectgaps=False),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=times,
            y=frame["equity"],
            name=f"equity ({svg(collateral)})",
            mode=mode,
            line={"color": "#9467bd", "width": 1.5},
        ),
        row=2,
        col=1,
    )
    _bands(fig, critical, warning, row=1, col=1)
    axis = _log_axis(list(health), 0.9, warning * 1.3, "health")
    if events is not None and len(events):
        _liquidation_marks(fig, events, zone, 10 ** (axis["range"][1] - 0.03))
    fig.update_layout(
        height=460,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        hovermode="x unified",
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        yaxis=axis,
        yaxis2={"title": f"equity ({svg(collateral)})", "tickformat": ",.0f"},
        xaxis2={"type": "date"},
    )
    return fig


def stress_figure(
    curves: pd.DataFrame,
    markers: pd.DataFrame,
    critical: float,
    warning: float,
    shock: float | None = None,
    what_if_health: float | None = None,
) -> go.Figure:
    """Health against a uniform price shock, one line per pool (and the what-if's cross
    pool, dotted); the liquidation line at 1; a marker where each pool is liquidated."""
    fig = go.Figure()
    for (pool, scenario), part in curves.groupby(["pool", "scenario"], sort=False):
        fig.add_trace(
            go.Scatter(
                x=part["shock"] * 100,
                y=part["health"].clip(lower=0.01),
                mode="lines",
                name=svg(f"{pool} ({scenario})"),
                line={"dash": "dot" if scenario == "what-if" else "solid"},
            )
        )
    if len(markers):
        fig.add_trace(
            go.Scatter(
                x=markers["shock"] * 100,
                y=[1.0] * len(markers),
                mode="markers+text",
                name="liquidated",
                marker={"symbol": "x", "size": 12, "color": LIQUIDATION},
                text=[svg(label) for label in markers["label"]],
                # alternate above and below: two pools are often liquidated a few % apart
                textposition=["top center" if i % 2 == 0 else "bottom center" for i in range(len(markers))],
                hovertemplate="%{text}: shock %{x:.1f} %<extra></extra>",
            )
        )
    if shock is not None and what_if_health is not None:
        fig.add_trace(
            go.Scatter(
                x=[shock * 100],
                y=[max(what_if_health, 0.01)],
                mode="markers",
                name="what-if",
                marker={"size": 14, "color": "#111", "symbol": "diamond"},
            )
        )
    _bands(fig, critical, warning)
    fig.update_layout(
        height=380,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": 1.1},
        xaxis={"title": "uniform price shock (%)", "ticksuffix": " %"},
        yaxis=_log_axis(
            [*(curves["health"] if len(curves) else []), what_if_health or 1.0], 0.5, warning * 2, "health"
        ),
    )
    return fig


def alert_timeline(intervals: pd.DataFrame, zone: tzinfo) -> go.Figure:
    """Bars from when an alert fired to when it cleared (or now), per account and rule."""
    fig = go.Figure()
    names = {1: "WARNING", 2: "CRITICAL"}
    for level, part in intervals.groupby("level"):
        start = pd.to_datetime(part["start"], utc=True).dt.tz_convert(zone).dt.tz_localize(None)
        end = pd.to_datetime(part["end"], utc=True).dt.tz_convert(zone).dt.tz_localize(None)
        fig.add_trace(
            go.Bar(
                base=start,
                x=(end - start).dt.total_seconds() * 1000,
                y=[svg(row) for row in part["row"]],
                orientation="h",
                name=names.get(int(level), str(level)),
                marker_color=COLORS["critical" if level == 2 else "warning"],
                hovertemplate="%{y}<br>%{base|%Y-%m-%d %H:%M} for %{customdata}<extra></extra>",
                customdata=[fmt.age((e - s).total_seconds()) for s, e in zip(start, end, strict=True)],
            )
        )
    rows = intervals["row"].nunique() if len(intervals) else 1
    fig.update_layout(
        barmode="overlay",
        height=120 + 28 * rows,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"type": "date"},
        yaxis={"type": "category", "autorange": "reversed"},
        legend={"orientation": "h", "y": 1.1},
    )
    return fig
