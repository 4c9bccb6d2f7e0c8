"""A report as one self-contained HTML page: matplotlib draws each plot as inline SVG, so the page
opens from disk, offline, with nothing fetched from anywhere.

Three plots on one event-time axis: rolling error per model version, PSI per feature, and which
version served when; each time plot carries the firing alerts, the swaps and (in the demo) the
point where drift was injected. With categorical features, the one whose shares moved most is drawn
as reference-versus-current shares of its categories. Tables of data quality per feature (missing,
out of range, unseen categories, refused), the alerts and the model events follow.
"""

from __future__ import annotations

import datetime as dt
import html
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from services.cli.report.figures import Curve, Marker, ReportData

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MARKER_STYLE: dict[str, tuple[str, str]] = {
    "concept_drift": ("#d62728", "--"),
    "performance": ("#8c564b", "--"),
    "data_drift": ("#ff7f0e", "--"),
    "data_quality": ("#7b4173", "--"),
    "prediction_drift": ("#9467bd", "--"),
    "swap": ("#2ca02c", "-"),
    "rollback": ("#7f7f7f", "-"),
    "injected": ("#000000", ":"),
}
"""Colour and line style of each kind of marker."""
TOP_FEATURES = 5
"""Features drawn in colour and named in the legend; the others are drawn thin and grey."""
FEATURE_COLOURS = ("#1f77b4", "#17becf", "#e377c2", "#bcbd22", "#393b79")
"""Colours of the top features: none of them is a marker's colour."""
MAX_ROWS = 200
"""Rows of the alert table at most (the newest are kept)."""


def render(data: ReportData, generated_at: dt.datetime | None = None) -> str:
    """The whole page."""
    generated = (generated_at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    plots = [
        ("Rolling error per model version", error_svg(data)),
        ("Data drift: PSI per feature against the serving version's reference", drift_svg(data)),
        ("Which version served when", timeline_svg(data)),
    ]
    if data.categories is not None:
        shares = data.categories
        title = (
            f"The category that moved most: {shares.feature}, last window against "
            f"v{shares.version}'s reference (PSI {shares.psi:.3f})"
        )
        plots.append((title, categories_svg(data)))
    sections = "\n".join(
        f'<section class="plot"><h2>{html.escape(title)}</h2>{svg}</section>'
        for title, svg in plots
    )
    return _PAGE.format(
        title=html.escape(f"driftline report: {data.model}"),
        generated=generated,
        facts=_facts(data),
        summary=_summary_table(data.summary),
        plots=sections,
        alerts=_alerts_table(data),
        quality=_quality_table(data),
        events=_events_table(data),
    )


# ---- plots ------------------------------------------------------------------------------------


def _figure(height: float) -> tuple[Figure, Axes]:
    import matplotlib  # noqa: PLC0415 - heavy: only for reports

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # noqa: PLC0415

    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, selectable
    matplotlib.rcParams["svg.hashsalt"] = "driftline"  # the same data draws the same SVG
    figure = Figure(figsize=(11, height), layout="constrained")
    return figure, figure.add_subplot()


def _times(ts: Sequence[int]) -> Any:
    import numpy as np  # noqa: PLC0415

    return np.array(ts, dtype="datetime64[ms]")


def _time_axis(axes: Axes, data: ReportData) -> None:
    """Event time, the same range on every plot, so that they line up."""
    from matplotlib import dates  # noqa: PLC0415

    if data.spans:
        first = min(span.first_ts for span in data.spans)
        last = max(span.last_ts for span in data.spans)
        axes.set_xlim(*_times([first, max(last, first + 1)]))
    axes.xaxis.set_major_formatter(dates.DateFormatter("%H:%M:%S"))  # type: ignore[no-untyped-call]
    axes.set_xlabel("event time (UTC)")
    axes.grid(alpha=0.3)


def _draw_markers(axes: Axes, markers: Sequence[Marker]) -> None:
    """Vertical lines; each kind named once in the legend."""
    named: set[str] = set()
    for marker in markers:
        colour, style = MARKER_STYLE.get(marker.kind, ("#333333", "-."))
        label = None if marker.kind in named else marker.kind.replace("_", " ")
        named.add(marker.kind)
        axes.axvline(_times([marker.ts])[0], color=colour, linestyle=style, lw=1.2, label=label)


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # inline: no XML prolog or doctype


def _empty(message: str) -> str:
    return f'<p class="empty">{html.escape(message)}</p>'


def error_svg(data: ReportData) -> str:
    if not data.errors:
        return _empty("No joined events yet: error needs labels.")
    figure, axes = _figure(4.2)
    for version, curve in sorted(data.errors.items()):
        axes.plot(_times(curve.ts), curve.values, lw=1.8, label=f"v{version}")
    _draw_markers(axes, data.markers)
    axes.set_ylabel(data.error_metric)
    axes.set_ylim(bottom=0)
    _time_axis(axes, data)
    axes.legend(loc="upper left", fontsize=9, ncols=2)
    return _svg(figure)


def top_features(drift: dict[str, Curve], count: int = TOP_FEATURES) -> list[str]:
    """Features by their largest PSI, largest first.

    >>> top_features({"a": Curve([1], [0.1]), "b": Curve([1], [0.9])}, 1)
    ['b']
    """
    return sorted(drift, key=lambda name: max(drift[name].values), reverse=True)[:count]


def drift_svg(data: ReportData) -> str:
    if not data.drift:
        return _empty("No feature windows yet, or no reference profile for the serving version.")
    figure, axes = _figure(4.2)
    top = top_features(data.drift)
    for name, curve in sorted(data.drift.items()):
        if name not in top:
            axes.plot(_times(curve.ts), curve.values, color="#bbbbbb", lw=0.8)
    for name, colour in zip(top, FEATURE_COLOURS, strict=False):
        curve = data.drift[name]
        axes.plot(_times(curve.ts), curve.values, lw=1.8, color=colour, label=name)
    axes.axhline(data.psi_threshold, color="#444444", lw=1, ls="-.", label="PSI threshold")
    _draw_markers(axes, [m for m in data.markers if m.kind != "concept_drift"])
    axes.set_ylabel("PSI")
    axes.set_ylim(bottom=0)
    _time_axis(axes, data)
    axes.legend(loc="upper left", fontsize=9, ncols=2)
    return _svg(figure)


def categories_svg(data: ReportData) -> str:
    """Reference-versus-current shares of the categorical feature that moved most."""
    shares = data.categories
    if shares is None:
        return _empty("No categorical feature.")
    import numpy as np  # noqa: PLC0415

    figure, axes = _figure(0.8 + 0.32 * len(shares.levels))
    rows = np.arange(len(shares.levels))
    axes.barh(rows - 0.2, shares.reference, height=0.4, color="#bbbbbb", label="reference")
    axes.barh(rows + 0.2, shares.current, height=0.4, color="#ff7f0e", label="last window")
    axes.set_yticks(rows, shares.levels)
    axes.invert_yaxis()
    axes.set_xlabel("share of events")
    axes.legend(loc="lower right", fontsize=9)
    return _svg(figure)


def timeline_svg(data: ReportData) -> str:
    if not data.spans:
        return _empty("No version has scored a joined event yet.")
    figure, axes = _figure(0.6 + 0.45 * len(data.spans))
    import matplotlib.colors as mcolors  # noqa: PLC0415

    palette = list(mcolors.TABLEAU_COLORS.values())
    for row, span in enumerate(data.spans):
        start, end = _times([span.first_ts, span.last_ts])
        colour = palette[(span.version - 1) % len(palette)]
        axes.barh(row, end - start, left=start, height=0.6, color=colour)
        axes.annotate(
            f"{span.events:,} events",
            (start, row),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
            color="white",
        )
    axes.set_yticks(range(len(data.spans)), [f"v{span.version}" for span in data.spans])
    axes.invert_yaxis()
    _time_axis(axes, data)
    return _svg(figure)


# ---- tables -----------------------------------------------------------------------------------


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _facts(data: ReportData) -> str:
    spans = ", ".join(f"v{s.version}: {s.events:,}" for s in data.spans) or "none"
    period = (
        f"{_when(min(s.first_ts for s in data.spans))} to {_when(max(s.last_ts for s in data.spans))}"
        if data.spans
        else "no events"
    )
    rows = [
        ("model", data.model),
        ("task", data.task),
        ("joined events", f"{data.examples:,} ({spans})"),
        ("event time", period),
        ("alerts", f"{sum(a.state == 'firing' for a in data.alerts)} firing"),
    ]
    return _table(["", ""], rows, header=False)


def _summary_table(summary: dict[str, object]) -> str:
    if not summary:
        return ""
    rows = [(key, _plain(value)) for key, value in summary.items()]
    return "<h2>Run summary</h2>" + _table(["", ""], rows, header=False)


def _alerts_table(data: ReportData) -> str:
    if not data.alerts:
        return _empty("No alerts.")
    rows = [
        (
            _when(a.ts),
            a.state,
            a.kind,
            f"v{a.version}",
            a.feature or "",
            f"{a.statistic:.4g} / {a.threshold:.4g}",
            a.severity,
            a.message,
        )
        for a in data.alerts[-MAX_ROWS:]
    ]
    head = ["event time", "state", "kind", "version", "feature", "statistic / threshold"]
    return _table([*head, "severity", "message"], rows)


def _quality_table(data: ReportData) -> str:
    if not data.quality:
        return "<p>No feature windows yet.</p>"

    def share(value: float | None) -> str:
        return "" if value is None else f"{value:.1%}"

    rows = [
        [
            q.feature,
            q.kind,
            f"{q.missing:.1%} (training {q.missing_reference:.1%})",
            share(q.out_of_range),
            share(q.unseen),
            q.refused,
        ]
        for q in data.quality
    ]
    head = ["feature", "kind", "missing", "out of range", "unseen categories", "refused"]
    return _table(head, rows)


def _events_table(data: ReportData) -> str:
    if not data.events:
        return _empty("No model events on the topic.")
    rows = [
        (
            _when(e.ts),
            e.event,
            f"v{e.version}",
            ", ".join(f"{k} {v:.4g}" for k, v in sorted(e.metrics.items())),
            e.reason or "",
        )
        for e in data.events
    ]
    return _table(["wall time", "event", "version", "metrics", "reason"], rows)


def _plain(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def _table(head: Sequence[str], rows: Sequence[Sequence[object]], *, header: bool = True) -> str:
    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    top = (
        "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead>"
        if header
        else ""
    )
    return f"<table>{top}<tbody>{cells}</tbody></table>"


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }}
h1 {{ font-size: 1.5em; margin-bottom: 0.2em; }}
h2 {{ font-size: 1.15em; margin-top: 1.6em; }}
.generated {{ color: #666; margin-top: 0; }}
table {{ border-collapse: collapse; margin: 0.5em 0; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 3px 10px 3px 0; text-align: left;
  vertical-align: top; }}
th {{ font-weight: 600; }}
section.plot svg {{ width: 100%; height: auto; }}
.empty {{ color: #666; font-style: italic; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p class="generated">generated {generated} by <code>driftline report</code></p>
{facts}
{summary}
{plots}
<h2>Data quality over the last window, per feature, against training</h2>
{quality}
<h2>Alerts</h2>
{alerts}
<h2>Model events</h2>
{events}
</body>
</html>
"""
