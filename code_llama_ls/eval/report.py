"""The results as a terminal table and as a one-page HTML report.

Both read the report object that ``--json`` prints. The HTML page holds its plots as base64 PNG
images drawn by matplotlib (Agg), so the one file is the whole report.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence

from code_llama_ls.eval.metrics import ALL_KINDS, Score
from code_llama_ls.exits import EXIT_USAGE, CliError
from code_llama_ls.eval.tasks import KINDS

COLUMNS = (("tasks", "tasks"), ("exact_match", "EM"), ("edit_similarity", "edit sim"),
           ("identifier_f1", "ident F1"), ("shown", "shown"), ("parses", "parses"),
           ("latency_p50_ms", "p50 ms"), ("latency_p95_ms", "p95 ms"))


def _rows(report: dict) -> list[tuple[str, str, dict]]:
    metrics = report["metrics"]
    return [(kind, variant, metrics[kind][variant]) for kind in (*KINDS, ALL_KINDS) if kind in metrics
            for variant in report["variants"] if variant in metrics[kind]]


def _cell(key: str, value: object) -> str:
    if value is None:
        return "–"
    if key == "tasks":
        return str(value)
    return f"{value:.0f}" if key.startswith("latency") else f"{value:.2f}"


def _stops(metrics: dict) -> str:
    return " ".join(f"{reason} {share:.0%}" for reason, share in metrics["stop_reasons"].items())


def table(report: dict) -> str:
    """One row per task kind and variant (``all``: every kind together)."""
    header = ["kind", "variant", *(title for _, title in COLUMNS), "stop reasons"]
    rows = [[kind, variant, *(_cell(key, m[key]) for key, _ in COLUMNS), _stops(m)]
            for kind, variant, m in _rows(report)]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    results = report["results"]
    lines.append(f"{report['tasks']['total']} tasks × {len(report['variants'])} variants; "
                 f"{results['from_cache']} results from the cache, {results['generated']} generated")
    return "\n".join(lines)


def _figure_png(draw) -> str:
    """A figure drawn by ``draw(figure)``, as a base64 PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    draw(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _bars(report: dict, key: str, title: str):
    """Grouped bars: one group per task kind, one bar per variant."""
    kinds = [kind for kind in (*KINDS, ALL_KINDS) if kind in report["metrics"]]
    variants = report["variants"]
    width = 0.8 / max(len(variants), 1)

    def draw(figure) -> None:
        axes = figure.add_subplot()
        for i, variant in enumerate(variants):
            values = [report["metrics"][kind].get(variant, {}).get(key) or 0.0 for kind in kinds]
            axes.bar([k + (i - (len(variants) - 1) / 2) * width for k in range(len(kinds))], values, width,
                     label=variant)
        axes.set_xticks(range(len(kinds)), kinds)
        axes.set_ylim(0, 1)
        axes.set_title(title)
        figure.legend(loc="outside lower center", fontsize="small", ncols=min(len(variants), 4))
    return draw


def _latencies(report: dict, scores: Sequence[Score]):
    """A box per variant of every task's latency."""
    variants = report["variants"]

    def draw(figure) -> None:
        axes = figure.add_subplot()
        axes.boxplot([[s.latency_ms for s in scores if s.variant == v] or [0.0] for v in variants])
        axes.set_xticks(range(1, len(variants) + 1), variants)
        axes.set_ylabel("ms")
        axes.set_title("Latency of a completion request (wall time of suggest)")
    return draw


def require_matplotlib() -> None:
    """matplotlib is an extra (``[eval]``): say how to install it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CliError("--html needs matplotlib: pip install 'code-llama-ls[eval]'", EXIT_USAGE) from None


def html_page(report: dict, scores: Sequence[Score]) -> str:
    """The report page: plots, the metrics table and the settings used."""
    require_matplotlib()
    plots = [_figure_png(_bars(report, "edit_similarity", "Edit similarity by task kind")),
             _figure_png(_bars(report, "exact_match", "Exact match by task kind")),
             _figure_png(_latencies(report, scores))]
    images = "\n".join(f'<img alt="plot {i + 1}" src="data:image/png;base64,{png}">' for i, png in enumerate(plots))
    titles = ("kind", "variant", *(title for _, title in COLUMNS), "stop reasons")
    head = "".join(f"<th>{html.escape(title)}</th>" for title in titles)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in
                                      [kind, variant, *(_cell(key, m[key]) for key, _ in COLUMNS), _stops(m)]) + "</tr>"
                     for kind, variant, m in _rows(report))
    settings = html.escape(json.dumps(report["settings"], indent=2, ensure_ascii=False))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>code-llama-ls eval</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}img{{display:block;margin:1em 0;max-width:100%}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .5em;text-align:right}}
td:nth-child(-n+2),th:nth-child(-n+2),td:last-child{{text-align:left}}</style></head>
<body><h1>code-llama-ls eval</h1>
<p>{html.escape(table(report).splitlines()[-1])}, from <code>{html.escape(report["repository"])}</code>.</p>
{images}
<h2>Metrics</h2><table><tr>{head}</tr>
{body}
</table>
<h2>Settings</h2><pre>{settings}</pre>
</body></html>
"""
