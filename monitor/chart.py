"""Sentiment and volume over time as a PNG, for `report --chart` and the weekly digest.

Drawn with matplotlib's object API on an Agg canvas: no pyplot state, no display, safe in the
daemon's worker threads.
"""

from __future__ import annotations

import io
from datetime import date

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import MO, AutoDateLocator, ConciseDateFormatter, DateFormatter, WeekdayLocator, date2num
from matplotlib.figure import Figure

from monitor.report import SENTIMENTS, BrandReport

COLOURS = {"negative": "#d62728", "neutral": "#b0b0b0", "positive": "#2ca02c"}
SOURCE_COLOURS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


def sentiment_chart(report: BrandReport, *, width: float = 10, height: float = 6.5, dpi: int = 100) -> bytes:
    """Top: mentions per period by sentiment, with net sentiment on the right axis. Bottom: volume by source."""
    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    days = [date.fromisoformat(p.period) for p in report.periods]
    bar = 5.5 if report.by == "week" else 0.8
    base = [0] * len(days)
    for sentiment in SENTIMENTS:
        values = [p.sentiment[sentiment] for p in report.periods]
        top.bar(days, values, bar, bottom=base, color=COLOURS[sentiment], label=sentiment, align="edge")
        base = [b + v for b, v in zip(base, values)]
    net_axis = top.twinx()
    centres = [date2num(d) + bar / 2 for d in days]
    net = [p.net for p in report.periods]
    net_axis.plot([c for c, n in zip(centres, net) if n is not None], [n for n in net if n is not None],
                  color="black", marker="o", linewidth=2, label="net sentiment")
    net_axis.axhline(0, color="black", linewidth=0.5, linestyle=":")
    net_axis.set_ylim(-1.05, 1.05)
    net_axis.set_ylabel("net sentiment (positive − negative) / labelled")
    top.set_ylabel("labelled mentions")
    handles, names = top.get_legend_handles_labels()
    net_handles, net_names = net_axis.get_legend_handles_labels()
    top.legend(handles + net_handles, names + net_names, loc="upper left", fontsize="small", ncols=4)
    top.set_title(f"{report.name}: sentiment and volume by {report.by} "
                  f"({report.since:%Y-%m-%d} to {report.until:%Y-%m-%d}, UTC)")

    sources = sorted({s for p in report.periods for s in p.by_source})
    base = [0] * len(days)
    for i, source in enumerate(sources):
        values = [p.by_source[source] for p in report.periods]
        bottom.bar(days, values, bar, bottom=base, color=SOURCE_COLOURS[i % len(SOURCE_COLOURS)], label=source,
                   align="edge")
        base = [b + v for b, v in zip(base, values)]
    bottom.set_ylabel("mentions")
    bottom.set_xlabel(f"{report.by} starting (UTC)")
    if sources:
        bottom.legend(loc="upper left", fontsize="small", ncols=min(len(sources), 5))
    if report.by == "week":  # a tick on each bar's Monday
        bottom.xaxis.set_major_locator(WeekdayLocator(MO, interval=max(1, len(days) // 10)))
        bottom.xaxis.set_major_formatter(DateFormatter("%d %b\n%Y"))
    else:
        locator = AutoDateLocator()
        bottom.xaxis.set_major_locator(locator)
        bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    for axis in (top, bottom):
        axis.grid(axis="y", alpha=0.3)
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()
