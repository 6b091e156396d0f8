"""The population report as one self-contained HTML page: inline CSS and inline SVG charts, no script, no
external resource (it opens offline, prints, and renders the same in a headless browser)."""

from __future__ import annotations

import math
from html import escape
from typing import Final

from services.clock import utc_text
from services.reports.population import GAP_TARGET_POINTS, PopulationReport, ReportRow

__all__ = ["render_html"]

_COLOURS: Final = {"registered": "#1f5fa8", "resident": "#e07b00", "permit_holders": "#2a9d5b"}
_LABELS: Final = {
    "registered": "registered 户籍人口",
    "resident": "resident 常住人口",
    "permit_holders": "permit holders 居住证持有人",
}
_WIDTH: Final = 1100
_LEFT: Final = 250
_RIGHT: Final = 110
_FONT: Final = "'Noto Sans CJK SC','WenQuanYi Micro Hei','PingFang SC','Microsoft YaHei',sans-serif"


def _number(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


def _nice_max(value: int) -> int:
    """A round upper end for an axis (1, 2 or 5 times a power of ten) at or above ``value``."""
    if value <= 0:
        return 10
    power = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def _label(row: ReportRow) -> str:
    return f"{row.region_code} {row.name}" if row.region_code else row.name


def _population_chart(report: PopulationReport) -> str:
    rows = report.rows
    bar, gap, group_gap, top = 10, 2, 16, 58
    group = 3 * bar + 2 * gap
    height = top + len(rows) * (group + group_gap) + 20
    plot = _WIDTH - _LEFT - _RIGHT
    values = [row.count(m) or 0 for row in rows for m in _COLOURS]
    scale_max = _nice_max(max(values, default=0))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" viewBox="0 0 {_WIDTH} {height}" '
        f'role="img" aria-labelledby="pop-title" font-family="{_FONT}" font-size="12">',
        '<title id="pop-title">Registered, resident and permit-holder population by district</title>',
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#b5b5b5" stroke-width="2"/></pattern></defs>',
    ]
    legend_x = _LEFT
    for measure, colour in _COLOURS.items():
        parts.append(f'<rect x="{legend_x}" y="8" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{legend_x + 17}" y="18">{escape(_LABELS[measure])}</text>')
        legend_x += 230
    parts.append(f'<rect x="{legend_x}" y="8" width="12" height="12" fill="url(#hatch)" stroke="#999"/>')
    parts.append(f'<text x="{legend_x + 17}" y="18">suppressed (count 1–{report.min_count - 1})</text>')
    for i in range(6):
        value = scale_max * i // 5
        x = _LEFT + plot * i / 5
        parts.append(f'<line x1="{x:.1f}" y1="{top - 8}" x2="{x:.1f}" y2="{height - 16}" stroke="#e3e3e3"/>')
        parts.append(f'<text x="{x:.1f}" y="{top - 12}" text-anchor="middle" fill="#666">{value:,}</text>')
    for index, row in enumerate(rows):
        y0 = top + index * (group + group_gap)
        parts.append(
            f'<text x="{_LEFT - 8}" y="{y0 + group / 2 + 4:.1f}" text-anchor="end">{escape(_label(row))}</text>'
        )
        for k, (measure, colour) in enumerate(_COLOURS.items()):
            y = y0 + k * (bar + gap)
            count = row.count(measure)
            if count is None:
                parts.append(
                    f'<rect x="{_LEFT}" y="{y}" width="60" height="{bar}" fill="url(#hatch)" stroke="#999" '
                    f'stroke-width="0.5"><title>{escape(_LABELS[measure])}: suppressed</title></rect>'
                )
                continue
            width = plot * count / scale_max if scale_max else 0
            parts.append(
                f'<rect x="{_LEFT}" y="{y}" width="{width:.1f}" height="{bar}" fill="{colour}">'
                f"<title>{escape(_LABELS[measure])}: {count:,}</title></rect>"
            )
            parts.append(f'<text x="{_LEFT + width + 4:.1f}" y="{y + bar - 1}" font-size="10">{count:,}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _urbanisation_chart(report: PopulationReport) -> str:
    rows = report.rows
    bar, gap, group_gap, top = 11, 2, 14, 58
    group = 2 * bar + gap
    height = top + len(rows) * (group + group_gap) + 20
    plot = _WIDTH - _LEFT - _RIGHT - 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" viewBox="0 0 {_WIDTH} {height}" '
        f'role="img" aria-labelledby="urb-title" font-family="{_FONT}" font-size="12">',
        '<title id="urb-title">Urbanisation of the registered and the resident population by district</title>',
    ]
    legend_x = _LEFT
    for measure in ("registered", "resident"):
        parts.append(f'<rect x="{legend_x}" y="8" width="12" height="12" fill="{_COLOURS[measure]}"/>')
        parts.append(f'<text x="{legend_x + 17}" y="18">urban share, {escape(_LABELS[measure])}</text>')
        legend_x += 290
    parts.append(
        f'<text x="{legend_x}" y="18" fill="#b00020">gap in points (target ≤ {GAP_TARGET_POINTS:g}, Nantong (3))</text>'
    )
    for i in range(0, 11, 2):
        x = _LEFT + plot * i / 10
        parts.append(f'<line x1="{x:.1f}" y1="{top - 8}" x2="{x:.1f}" y2="{height - 16}" stroke="#e3e3e3"/>')
        parts.append(f'<text x="{x:.1f}" y="{top - 12}" text-anchor="middle" fill="#666">{i * 10}%</text>')
    for index, row in enumerate(rows):
        y0 = top + index * (group + group_gap)
        parts.append(
            f'<text x="{_LEFT - 8}" y="{y0 + group / 2 + 4:.1f}" text-anchor="end">{escape(_label(row))}</text>'
        )
        for k, measure in enumerate(("registered", "resident")):
            y = y0 + k * (bar + gap)
            share = row.share(measure)
            if share is None:
                parts.append(
                    f'<rect x="{_LEFT}" y="{y}" width="60" height="{bar}" fill="url(#hatch)" stroke="#999" '
                    'stroke-width="0.5"/>'
                )
                continue
            parts.append(
                f'<rect x="{_LEFT}" y="{y}" width="{plot * share:.1f}" height="{bar}" fill="{_COLOURS[measure]}">'
                f"<title>{escape(_LABELS[measure])}: {_percent(share)}</title></rect>"
            )
        gap_points = row.gap_points
        if gap_points is not None:
            colour = "#b00020" if gap_points > GAP_TARGET_POINTS else "#2a7a2a"
            parts.append(
                f'<text x="{_WIDTH - _RIGHT - 30}" y="{y0 + group / 2 + 4:.1f}" fill="{colour}" '
                f'font-weight="bold">{gap_points:+.1f} pts</text>'
            )
    parts.append("</svg>")
    return "\n".join(parts)


def _table(report: PopulationReport) -> str:
    head = (
        "<tr><th>region</th><th>district</th>"
        "<th>registered</th><th>urban</th><th>share</th>"
        "<th>resident</th><th>urban</th><th>share</th>"
        "<th>permit holders</th><th>urban</th><th>share</th>"
        "<th>gap (pts)</th></tr>"
    )
    body = []
    for row in (*report.rows, report.total):
        gap = row.gap_points
        gap_class = "" if gap is None else (' class="over"' if gap > GAP_TARGET_POINTS else ' class="ok"')
        cells = [
            escape(row.region_code or ""),
            escape(row.name),
            _number(row.count("registered")),
            _number(row.count("registered_urban")),
            _percent(row.share("registered")),
            _number(row.count("resident")),
            _number(row.count("resident_urban")),
            _percent(row.share("resident")),
            _number(row.count("permit_holders")),
            _number(row.count("permit_holders_urban")),
            _percent(row.share("permit_holders")),
        ]
        tr = ' class="total"' if row.region_code is None else ""
        tds = "".join(f"<td>{c}</td>" for c in cells)
        body.append(f"<tr{tr}>{tds}<td{gap_class}>{'—' if gap is None else f'{gap:+.2f}'}</td></tr>")
    return f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"


def _summary(report: PopulationReport) -> str:
    total = report.total
    gap = total.gap_points
    verdict = (
        "no figure (suppressed or empty)"
        if gap is None
        else (f"{gap:+.2f} points: within" if gap <= GAP_TARGET_POINTS else f"{gap:+.2f} points: over")
        + f" the {GAP_TARGET_POINTS:g}-point target"
    )
    items = [
        ("registered population", _number(total.count("registered")), _percent(total.share("registered"))),
        ("resident population", _number(total.count("resident")), _percent(total.share("resident"))),
        ("permit holders", _number(total.count("permit_holders")), _percent(total.share("permit_holders"))),
    ]
    cards = "".join(
        f'<div class="card"><div class="k">{escape(k)}</div><div class="v">{v}</div>'
        f'<div class="s">urban {s}</div></div>'
        for k, v, s in items
    )
    gap_card = f'<div class="card"><div class="k">urbanisation gap</div><div class="v">{escape(verdict)}</div></div>'
    return f'<div class="cards">{cards}{gap_card}</div>'


_CSS: Final = f"""
body {{ font-family: {_FONT}; color: #1d1d1d; margin: 24px 32px; background: #fff; }}
h1 {{ font-size: 22px; margin: 0 0 4px; }}
h2 {{ font-size: 17px; margin: 28px 0 8px; }}
p.meta {{ color: #555; margin: 0 0 16px; font-size: 13px; }}
.cards {{ display: flex; gap: 12px; flex-wrap: wrap; }}
.card {{ border: 1px solid #ddd; border-radius: 6px; padding: 10px 14px; min-width: 190px; }}
.card .k {{ color: #666; font-size: 12px; }} .card .v {{ font-size: 20px; font-weight: 600; }}
.card .s {{ color: #444; font-size: 12px; }}
table {{ border-collapse: collapse; font-size: 12px; margin-top: 8px; }}
th, td {{ border-bottom: 1px solid #e5e5e5; padding: 4px 8px; text-align: right; }}
th:nth-child(-n+2), td:nth-child(-n+2) {{ text-align: left; }}
tr.total td {{ font-weight: 600; border-top: 2px solid #999; }}
td.over {{ color: #b00020; font-weight: 600; }} td.ok {{ color: #2a7a2a; }}
p.note {{ color: #555; font-size: 12px; max-width: 1000px; }}
"""


def _known(report: PopulationReport) -> str:
    if report.known_at is None:
        return ""
    moment = utc_text(report.known_at)
    return f" As the log knew it at {escape(moment)} (<code>--known-at {escape(moment)}</code> reproduces it)."


def render_html(report: PopulationReport) -> str:
    """The report as a self-contained HTML page (inline CSS and SVG; no script, no external resource)."""
    title = f"Population report {report.year} — {report.region_name}"
    empty = "<p>No resident is known in this region on this date.</p>" if not report.rows else ""
    return f"""<!DOCTYPE html>
<html lang="zh-Hans">
<head>
<meta charset="utf-8">
<title>{escape(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p class="meta">人口统计年报 · figures on {report.as_of.isoformat()} (31 December), computed from the renkou projection
with the definitions of <code>GET /v1/statistics/population</code>; per district (GB/T 2260 code, the divisions in
force that year).{_known(report)}</p>
{_summary(report)}
{empty}
<h2>Population by district 分区人口</h2>
{_population_chart(report) if report.rows else ""}
<h2>Urbanisation 城镇化率: registered vs resident</h2>
{_urbanisation_chart(report) if report.rows else ""}
<h2>Figures</h2>
{_table(report)}
<p class="note">Registered: hukou in the district, alive. Resident: living in the district (a residence
registration of six months or more, else the hukou place), alive. Permit holders: a residence permit of the
district valid on the date. Urban shares are urban counts over each population; the gap is the resident minus
the registered urban share, in percentage points (Nantong plan (3): no more than {GAP_TARGET_POINTS:g}).
Counts from 1 to {report.min_count - 1} are suppressed (—), as are urban counts whose rural remainder is that
small, and, where a column would otherwise give a hidden figure back through the total, the next smallest.</p>
</body>
</html>
"""
