"""The report as one HTML file that opens offline: plotly.js is embedded once, inline (no CDN),
and every figure is a div drawn by it."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import plotly.io as pio
from plotly.offline import get_plotlyjs

from tuner.review.data import ReviewData

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
.headline { font-size: 1.05em; background: #f4f7fb; border-left: 4px solid #d62728;
            padding: 0.6em 0.9em; }
.muted { color: #666; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
tr.winner td { background: #fff3cd; font-weight: 600; }
tr.FAIL td, tr.PRUNED td { color: #777; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: 0.8em; }
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _figure_div(name: str, fig: object) -> str:
    return pio.to_html(
        fig,
        full_html=False,
        include_plotlyjs=False,
        div_id=f"plot-{name}",
        config={"displaylogo": False, "responsive": True},
    )


def _table(data: ReviewData) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in data.columns)
    body = []
    for row in data.rows:
        classes = [row[1]]
        if data.winner is not None and row[0] == str(data.winner):
            classes.append("winner")
        cells = "".join(f"<td>{_e(v)}</td>" for v in row)
        body.append(f'<tr class="{" ".join(classes)}">{cells}</tr>')
    rows = "".join(body)
    note = f'<p class="table-note">{_e(data.table_note)}</p>' if data.table_note else ""
    return f'<table id="trials"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{note}'


def render_page(data: ReviewData, figures: dict[str, object]) -> str:
    states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(data.states.items()))
    curves = figures.get("curves")
    importance = f'<p class="muted">{_e(data.importance_note)}</p>' + (
        _figure_div("importances", figures["importances"]) if "importances" in figures else ""
    )
    if data.batching_file:
        exported = (
            f"<p>trial {data.winner}'s <code>batching_parameters.txt</code>, as "
            "<code>python -m tuner export</code> writes it:</p>"
            f'<pre id="batching-file">{_e(data.batching_file)}</pre>'
        )
    else:
        exported = f'<p class="muted" id="batching-file">{_e(data.batching_note)}</p>'
    source = (
        "each step of the capacity search (table <code>tuner_capacity_steps</code>)"
        if data.capacity
        else "each measured interval (table <code>tuner_load_samples</code>)"
    )
    curves_html = (
        _figure_div("curves", curves)
        if curves is not None and data.curves
        else '<p class="muted">no completed trial has stored load measurements</p>'
    )
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Batching study {_e(data.study_name)}</title>
<style>{_CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head>
<body>
<h1>Batching study <code>{_e(data.study_name)}</code></h1>
<p class="muted">{_e(data.objective)}<br>{data.trials} trials: {_e(states)}.
Generated {generated} by <code>python -m tuner report</code>.</p>
<p class="headline" id="headline">{_e(data.headline)}</p>
<h2>Latency against offered load</h2>
<p class="muted">The {_e(data.percentile)} latency of {source}; the dashed line is the SLO
({data.slo_ms:g} ms). Click a legend entry to hide a trial, double-click to show only it.</p>
{curves_html}
<h2>Throughput against latency</h2>
{_figure_div("scatter", figures["scatter"])}
<h2>Parameter importances</h2>
{importance}
<h2>Trials</h2>
{_table(data)}
<h2>The exported batching file</h2>
{exported}
</body>
</html>
"""
