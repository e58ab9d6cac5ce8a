"""The report's plots as Plotly figures (the library Optuna's own visualisations use), built
from ReviewData only. Each figure is also what `--png` writes and what the dashboard shows."""

from __future__ import annotations

import plotly.graph_objects as go

from tuner.review.data import ROLE_NAMES, ReviewData, TrialCurve, TrialPoint

# The winner and the two references stand out; every other trial is a thin grey-blue line.
ROLE_STYLE = {
    "winner": {"color": "#d62728", "width": 4, "symbol": "star"},
    "no_batching": {"color": "#222222", "width": 3, "symbol": "square"},
    "tf_serving_recommended": {"color": "#2ca02c", "width": 3, "symbol": "diamond"},
}
OTHER_STYLE = {"color": "#8fa8c8", "width": 1.5, "symbol": "circle"}
FIGURE_TITLES = {
    "curves": "latency against offered load",
    "scatter": "throughput against latency",
    "importances": "parameter importances",
}


def _style(role: str) -> dict:
    return ROLE_STYLE.get(role, OTHER_STYLE)


def _name(label: str, role: str) -> str:
    if role not in ROLE_NAMES or label.endswith(ROLE_NAMES[role]):
        return label
    return f"{label} ({ROLE_NAMES[role]})"


TEXT_POSITION = {"no_batching": "top center", "tf_serving_recommended": "bottom center"}


def _slo_trace(slo_ms: float, span: list[float], axis: str) -> go.Scatter:
    """The SLO as a dashed line across `span` of the other axis: a trace, not a shape, so it
    is placed right on log axes and named in the legend."""
    ends = [slo_ms, slo_ms]
    x, y = (span, ends) if axis == "y" else (ends, span)
    return go.Scatter(
        x=x,
        y=y,
        mode="lines",
        name=f"SLO {slo_ms:g} ms",
        line={"color": "#d62728", "dash": "dash", "width": 2},
        hoverinfo="name",
    )


def _span(values: list[float | None], floor: float = 0.0) -> list[float]:
    known = [v for v in values if v is not None]
    if not known:
        return [floor, 1.0]
    return [min(floor, *known), max(known) * 1.05]


_BOTTOM_LEGEND = {"orientation": "h", "yanchor": "top", "y": -0.18, "xanchor": "left", "x": 0}


def curve_trace(curve: TrialCurve, percentile: str, capacity: bool) -> go.Scatter:
    style = _style(curve.role)
    points = curve.points
    hover = [
        f"offered {p.offered_rps:.1f} req/s<br>goodput {_num(p.goodput_rps)} req/s<br>"
        f"p50 {_num(p.p50_ms)} / p95 {_num(p.p95_ms)} / p99 {_num(p.p99_ms)} ms"
        + ("" if p.passed is None else f"<br>{'passed' if p.passed else 'failed'}")
        for p in points
    ]
    return go.Scatter(
        x=[p.offered_rps for p in points],
        y=[getattr(p, f"{percentile}_ms") for p in points],
        name=_name(curve.label, curve.role),
        mode="lines+markers" if capacity else "markers",
        line={"color": style["color"], "width": style["width"]},
        marker={
            "color": style["color"],
            "symbol": [style["symbol"] if p.passed is not False else "x-thin-open" for p in points],
            "size": 9 if curve.role else 6,
            "line": {"color": style["color"], "width": 1},
        },
        hovertext=hover,
        hoverinfo="text+name",
        opacity=1.0 if curve.role else 0.8,
    )


def curves_figure(data: ReviewData) -> go.Figure:
    """Each completed trial's latency percentile against the load offered to it, the SLO as a
    line: a configuration's capacity is where its curve crosses the line."""
    fig = go.Figure()
    ordered = sorted(data.curves, key=lambda c: (c.role != "", c.trial))  # highlights on top
    for curve in ordered:
        fig.add_trace(curve_trace(curve, data.percentile, data.capacity))
    rates = [p.offered_rps for c in data.curves for p in c.points]
    fig.add_trace(_slo_trace(data.slo_ms, _span(rates), "y"))
    x_title = "offered load (req/s)" if data.capacity else "throughput per interval (req/s)"
    fig.update_layout(
        title=f"{data.percentile} latency against offered load, every completed trial",
        xaxis_title=x_title,
        yaxis_title=f"{data.percentile} latency (ms, log scale)",
        yaxis_type="log",
        legend_title="x = a failed step" if data.capacity else "",
        legend=_BOTTOM_LEGEND,
        template="plotly_white",
        height=520 + 22 * len(data.curves),
    )
    return fig


def trial_curve_figure(
    curve: TrialCurve, percentile: str, slo_ms: float, capacity: bool
) -> go.Figure:
    """One trial: its p50, p95 and p99 against offered load, the SLO line (the dashboard's
    per-trial plot)."""
    fig = go.Figure()
    colors = {"p50": "#1f77b4", "p95": "#ff7f0e", "p99": "#9467bd"}
    for pct, color in colors.items():
        fig.add_trace(
            go.Scatter(
                x=[p.offered_rps for p in curve.points],
                y=[getattr(p, f"{pct}_ms") for p in curve.points],
                name=pct,
                mode="lines+markers" if capacity else "markers",
                line={"color": color, "width": 3 if pct == percentile else 1.5},
            )
        )
    fig.add_trace(_slo_trace(slo_ms, _span([p.offered_rps for p in curve.points]), "y"))
    fig.update_layout(
        title=f"trial {_name(curve.label, curve.role)}",
        xaxis_title="offered load (req/s)",
        yaxis_title="latency (ms, log scale)",
        yaxis_type="log",
        template="plotly_white",
        height=420,
    )
    return fig


def scatter_figure(data: ReviewData) -> go.Figure:
    """Throughput against latency at that throughput, one marker per completed trial, feasible
    or not: the winner is the highest feasible marker left of the SLO line."""
    fig = go.Figure()
    groups: dict[str, list[TrialPoint]] = {"feasible": [], "infeasible": []}
    highlighted = [p for p in data.points if p.role]
    for p in data.points:
        if not p.role:
            groups["feasible" if p.feasible else "infeasible"].append(p)
    for name, points in groups.items():
        color = "#1f77b4" if name == "feasible" else "#bbbbbb"
        fig.add_trace(
            go.Scatter(
                x=[p.latency_ms for p in points],
                y=[p.rps for p in points],
                mode="markers",
                name=name,
                marker={"color": color, "size": 10, "line": {"color": "#333", "width": 1}},
                text=[p.label for p in points],
                hoverinfo="text+x+y",
            )
        )
    for p in highlighted:
        style = _style(p.role)
        fig.add_trace(
            go.Scatter(
                x=[p.latency_ms],
                y=[p.rps],
                mode="markers+text",
                name=_name(p.label, p.role) + ("" if p.feasible else " infeasible"),
                marker={"color": style["color"], "size": 16, "symbol": style["symbol"]},
                text=[ROLE_NAMES.get(p.role, p.label)],
                textposition=TEXT_POSITION.get(p.role, "top center"),
                hoverinfo="name+x+y",
            )
        )
    fig.add_trace(_slo_trace(data.slo_ms, _span([p.rps for p in data.points]), "x"))
    what = "capacity" if data.capacity else "goodput"
    at = "at capacity" if data.capacity else "over the window"
    fig.update_layout(
        title=f"{what} against {data.percentile} latency {at}, every completed trial",
        xaxis_title=f"{data.percentile} latency {at} (ms, log scale)",
        xaxis_type="log",
        yaxis_title=data.metric,
        legend=_BOTTOM_LEGEND,
        template="plotly_white",
        height=600,
    )
    return fig


def importances_figure(data: ReviewData) -> go.Figure | None:
    if not data.importances:
        return None
    ordered = sorted(data.importances.items(), key=lambda kv: kv[1])
    fig = go.Figure(
        go.Bar(
            x=[v for _, v in ordered],
            y=[k for k, _ in ordered],
            orientation="h",
            marker_color="#1f77b4",
            text=[f"{v:.2f}" for _, v in ordered],
            textposition="auto",
        )
    )
    fig.update_layout(
        title=f"parameter importances for {data.metric} (Optuna's default evaluator)",
        xaxis_title="importance",
        template="plotly_white",
        height=120 + 40 * len(ordered),
    )
    return fig


def report_figures(data: ReviewData) -> dict[str, go.Figure]:
    """The report's plots by name (the PNG files are named after them)."""
    figures = {"curves": curves_figure(data), "scatter": scatter_figure(data)}
    importance = importances_figure(data)
    if importance is not None:
        figures["importances"] = importance
    return figures


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
