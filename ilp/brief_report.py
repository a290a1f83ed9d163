"""The printable command brief for the weekly tasking meeting: self-contained HTML, and PDF from it.

Self-contained means one file with its chart drawn as inline SVG and its styles inline: no scripts, no
web fonts, no external requests, so it opens on an air-gapped laptop and prints the same everywhere.
The PDF is the same HTML printed by headless Chromium (Debian's package, installed by `make test`).

Every brief is stamped with what produced it (snapshot, harm index and version, threat-matrix version,
parameters, generation time) and its generation is written to the audit log, so any number in it can
be reproduced later from the same snapshot.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd

from ilp import taskings as tasking_rules
from ilp.analytics import changes as change_analysis
from ilp.analytics import evaluation
from ilp.analytics.brief import Brief, BriefError, BriefRequest, build_brief, location_area
from ilp.snapshot import SnapshotReader
from ilp.state import State
from ilp.warehouse import Warehouse

__all__ = ["BriefError", "generate", "render_bytes", "render_html", "write_brief"]

LOCATIONS_PRINTED = 5
VICTIM_ROWS_PRINTED = 5


def _tasking_cell(owner, status) -> str:
    """The printed brief's tasking cell: 'Insp. Okafor (In progress)' or 'Not tasked'."""
    return _e(tasking_rules.summary(owner, status))


def _threat_place(row) -> str:
    """'Harbour (district 1)', 'Beat 1A (beat 1A)' as the source names it, or 'Citywide' for a ranking by offence."""
    if row.level == "city":
        return "Citywide"
    return f"{_e(row.area_name or row.area)} ({_e(row.level)} {_e(row.area)})"


def _number(value, spec: str) -> str:
    """``value`` formatted with ``spec``, or '–' when it is missing (a baseline the data does not reach)."""
    return "–" if value is None or value != value else format(value, spec)


def _baseline_format(measure: str, baseline: str) -> str:
    """A 4-week mean of incidents keeps a decimal; harm and single weeks are whole numbers."""
    return ",.1f" if measure == "incidents" and baseline == "prior_4wk" else ",.0f"


# ------------------------------------------------------------------------------------------ HTML
def _e(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return html.escape(str(value))


def _nice_step(span: float, ticks: int = 5) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about ``ticks`` intervals."""
    raw = max(span, 1e-9) / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(power * f for f in (1, 2, 2.5, 5, 10) if power * f >= raw)


def weekly_chart_svg(
    weekly: pd.DataFrame, *, unit: str, highlight: dt.date, width: int = 860, height: int = 260
) -> str:
    """A 52-week line chart of harm as inline SVG, with labelled axes, round y ticks and the brief's week marked."""
    left, right, top, bottom = 92, 36, 36, 48
    values = weekly["harm"].astype(float).tolist()
    weeks = [pd.Timestamp(w).date() for w in weekly["week"]]
    if not values:
        return "<p>No weeks to chart.</p>"
    step = _nice_step(max(values) or 1.0)
    ceiling = step * math.ceil((max(values) or 1.0) * 1.05 / step)
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (plot_w * i / max(len(values) - 1, 1))

    def y(v: float) -> float:
        return top + plot_h - plot_h * v / ceiling

    points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="Weekly harm, 52 weeks">',
        f'<text x="{left}" y="20" font-size="14" font-weight="bold">Weekly harm, {len(values)} weeks to {highlight:%d %b %Y}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#444"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#444"/>',
    ]
    for k in range(int(round(ceiling / step)) + 1):
        value = k * step
        parts.append(
            f'<line x1="{left - 4}" y1="{y(value):.1f}" x2="{left + plot_w}" y2="{y(value):.1f}" stroke="#ddd"/>'
        )
        parts.append(
            f'<text x="{left - 8}" y="{y(value) + 4:.1f}" font-size="11" text-anchor="end">{value:,.0f}</text>'
        )
    for i, week in enumerate(weeks):
        if (i % 8 == 0 and i <= len(weeks) - 5) or i == len(weeks) - 1:
            anchor = "end" if i == len(weeks) - 1 else "middle"
            parts.append(
                f'<text x="{x(i):.1f}" y="{top + plot_h + 16}" font-size="11" text-anchor="{anchor}">{week:%d %b %y}</text>'
            )
    parts.append(f'<polyline fill="none" stroke="#1f3a5f" stroke-width="2" points="{points}"/>')
    if highlight in weeks:
        i = weeks.index(highlight)
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(values[i]):.1f}" r="5" fill="#D55E00"/>')
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 6}" font-size="12" text-anchor="middle">Week starting (Monday)</text>'
    )
    parts.append(
        f'<text transform="translate(16,{top + plot_h / 2}) rotate(-90)" font-size="12" text-anchor="middle">'
        f"Harm per week ({_e(unit.split(' (')[0])})</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


STYLE = """
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #14171a; margin: 24px; font-size: 12px; }
h1 { font-size: 22px; margin: 0 0 4px 0; } h2 { font-size: 16px; margin: 22px 0 6px 0; border-bottom: 2px solid #1f3a5f; }
.stamp { font-size: 11px; color: #333; background: #eef1f5; padding: 6px 8px; }
.demo { background: #fff3cd; border: 1px solid #e0b84c; padding: 6px 8px; margin: 8px 0; font-weight: bold; }
.stale { background: #fde8e4; border: 1px solid #c0462b; padding: 6px 8px; margin: 8px 0; font-weight: bold; }
table { border-collapse: collapse; width: 100%; } th, td { border-bottom: 1px solid #ccc; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #eef1f5; } td.num { text-align: right; white-space: nowrap; } .sig { font-weight: bold; color: #8a1c00; }
.overdue { color: #8a1c00; font-weight: bold; } p.note { font-size: 11px; color: #444; }
@page { size: A4 landscape; margin: 12mm; }
"""


def _estimate(value, low, high, spec: str) -> str:
    """'0.62 (0.43 – 0.89)', or '–' when there is no estimate."""
    if value is None or value != value:
        return "–"
    return f"{value:{spec}} ({low:{spec}} – {high:{spec}})"


def tasking_results_html(brief: Brief) -> str:
    """Section 6, last month's taskings: what happened (each tasking's result note beside its evaluation so far,
    ``ilp.analytics.evaluation.last_month_taskings``)."""
    month = brief.tasking_month
    if month is None:
        return ""
    rows = (
        "".join(
            f"<tr><td class='num'>{int(t.id)}</td><td>{_e(t.category_label)}</td><td>{_e(t.place)}</td>"
            f"<td>{_e(t.owner)}</td><td>{_e(t.status_text)}</td><td>{_e(t.result_note)}</td><td>{t.start:%d %b}</td>"
            f"<td>{_e(t.reading)}</td><td class='num'>{_estimate(t.ratio, t.ratio_low, t.ratio_high, '.2f')}</td>"
            f"<td class='num'>{_estimate(t.wdd_z, t.wdd_z, t.wdd_z, '+.1f').split(' (')[0]}</td>"
            f"<td class='num'>{_estimate(t.harm_prevented, t.harm_prevented_low, t.harm_prevented_high, ',.0f')}</td>"
            f"<td>{_e(t.flags)}</td></tr>"
            for t in brief.tasking_results.itertuples()
        )
        or f"<tr><td colspan='12'>No tasking was created in {month:%B %Y}.</td></tr>"
    )
    return f"""<h2>6. Last month's taskings: what happened ({month:%B %Y})</h2>
<p class="note">Each tasking created in {month:%B %Y}, its owner's result note and what the data to
{brief.as_of:%d %b %Y} say. Ratio: the target's incidents after the tasking as a share of what an untreated comparison
area (chosen from the weeks before) says they would have been, 95% interval; interim until 12 weeks of data follow
the tasking. WDD z: the weighted displacement difference over the target and its neighbouring areas. Harm prevented:
harm expected without the tasking minus harm recorded ({_e(brief.harm.unit_short)}, 95% interval). Caveats: what
weakens the estimate. Arrests are not counted as success.</p>
<table><tr><th>#</th><th>Offence</th><th>Area</th><th>Owner</th><th>Status</th><th>Result</th><th>Start</th><th>Evaluation</th>
<th>Ratio (95%)</th><th>WDD z</th><th>Harm prevented (95%)</th><th>Caveats</th></tr>{rows}</table>
"""


def render_html(brief: Brief) -> str:
    threats_rows = (
        "".join(
            f"<tr><td class='num'>{int(r['rank'])}</td><td>{_e(r.category_label)}</td><td>{_threat_place(r)}</td><td class='num'>{r.score:.2f}</td><td class='num'>{r.harm:,.0f}</td>"
            f"<td class='num'>{int(r['count'])}</td><td class='num'>{_number(r.baseline, '.1f')}</td>"
            f"<td class='num{' sig' if r.significant else ''}'>{_number(r.z, '.1f')}{' *' if r.significant else ''}</td>"
            f"<td>{_e(r.explanation)}</td><td>{_tasking_cell(r.tasking_owner, r.tasking_status)}</td></tr>"
            for _, r in brief.threats.iterrows()
        )
        or f"<tr><td colspan='10'>{_e(brief.no_threats_text)}</td></tr>"
    )
    location_rows = (
        "".join(
            f"<tr><td class='num'>{int(r['rank'])}</td><td>{_e(r.location)}</td>"
            f"<td>{_e(location_area(r.beat, r.district, r.district_name))}</td><td>{_e(r.categories)}</td>"
            f"<td class='num'>{int(r.incidents)}</td><td class='num'>{r.harm:,.0f}</td><td class='num'>{_number(r.baseline, '.1f')}</td>"
            f"<td class='num'>{_number(round(r.z, 1) + 0.0, '+.1f')}</td><td>{r.first_seen:%d %b} – {r.last_seen:%d %b}</td>"
            f"<td>{_tasking_cell(r.get('tasking_owner'), r.get('tasking_status'))}</td></tr>"
            for _, r in brief.repeat_locations.head(LOCATIONS_PRINTED).iterrows()
        )
        or f"<tr><td colspan='10'>{_e(brief.no_locations_text)}</td></tr>"
    )
    victim_rows = "".join(
        f"<tr><td>{_e(v.area_name if v.area_name != v.area else v.area)} ({_e(v.level)} {_e(v.area)})</td>"
        f"<td>{_e(v.category_label)}</td><td class='num'>{int(v.repeat_victims)}</td>"
        f"<td class='num'>{int(v.incidents_recent)}</td><td class='num'>{int(v.incidents_window)}</td>"
        f"<td class='num'>{int(v.under_18)}</td><td class='num'>{int(v.aged_65_plus)}</td>"
        f"<td class='num'>{v.domestic_share:.0%}</td></tr>"
        for _, v in brief.repeat_victims.head(VICTIM_ROWS_PRINTED).iterrows()
    ) or (
        "<tr><td colspan='8'>No victim records in this source, so repeat victims cannot be counted.</td></tr>"
        if not brief.victim_records
        else "<tr><td colspan='8'>No repeat victim had an incident in these 28 days.</td></tr>"
    )
    change_rows = (
        "".join(
            f"<tr><td>{_e(c.window_label)}</td><td>{_e(c.category_label)}</td><td>{_e(c.area_name or c.area)}</td>"
            f"<td class='num'>{int(c['count'])}</td><td class='num'>{_number(c.baseline, '.1f')}</td><td class='num'>{_number(c.z, '.1f')}</td>"
            f"<td class='num'>{c.q_value:.3f}</td><td>{_e(c.change_text)}</td></tr>"
            for _, c in brief.significant_changes.assign(
                window_label=brief.significant_changes["window"].map(change_analysis.WINDOW_LABELS)
            ).iterrows()
        )
        or f"<tr><td colspan='8'>No change is significant at a false discovery rate of {brief.fdr:.0%}.</td></tr>"
    )
    due_rows = (
        "".join(
            f"<tr><td class='num'>{int(t.id)}</td><td>{_e(t.category_label)}</td><td>{_e(t.place)}</td>"
            f"<td>{_e(t.owner)}</td><td>{_e(t.action)}</td><td class='{'overdue' if t.overdue else ''}'>{_e(t.due_date)}"
            f"{' (' + tasking_rules.overdue_text(t.days_overdue) + ')' if t.overdue else ''}</td>"
            f"<td>{_e(tasking_rules.status_text(t.status))}</td></tr>"
            for _, t in brief.taskings_due.iterrows()
        )
        or "<tr><td colspan='7'>No tasking is due or overdue.</td></tr>"
    )
    head = brief.headline
    headline_rows = "".join(
        f"<tr><td>{label}</td><td class='num'>{head[measure]:,.0f}</td>"
        + "".join(
            f"<td class='num'>{_number(head[f'{b}_{measure}'], _baseline_format(measure, b))}</td>"
            f"<td class='num'>{_number(head[f'{b}_{measure}_z'], '+.1f')}</td><td>{_e(head[f'{b}_{measure}_reading'])}</td>"
            for b in ("prior_4wk", "last_year")
        )
        + "</tr>"
        for measure, label in (("harm", f"Harm ({_e(brief.harm.unit_short)})"), ("incidents", "Incidents"))
    )
    scope = f"district {_e(brief.district)}" if brief.district else "citywide"
    if brief.category:
        scope += f", {_e(brief.category_scope)}"
    demo = (
        "<div class='demo'>Demo city — synthetic data. No real person or place is shown.</div>"
        if brief.info.demo
        else ""
    )
    level = _e(brief.level if brief.level != "city" else "city (offence only)")
    stale = f"<div class='stale'>{_e(brief.staleness)}</div>" if brief.staleness else ""
    level_note = "".join(
        f"<p class='note'><b>{_e(note)}</b></p>" for note in (brief.level_note, brief.coverage_note) if note
    )
    month_only = (
        "<div class='stale'>This source dates offences to the month only: the weekly figures below count each "
        "month's offences in the week that holds the 1st and cannot show a change within a month.</div>"
        if not brief.info.weekly
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Command brief, week of {brief.week:%d %b %Y}</title>
<style>{STYLE}</style></head><body>
<h1>Command brief: week {brief.week:%d %b %Y} – {brief.as_of:%d %b %Y} ({scope})</h1>
<div class="stamp">{_e(brief.stamp)}<br>Parameters: {_e(", ".join(f"{k}={'all' if v is None else v}" for k, v in brief.parameters.items()))}</div>
{demo}{stale}{month_only}
<h2>1. Top threats (offence x {level}), ranked with reasons</h2>
{level_note}
<p class="note">Score: weighted harm, momentum, expected harm, vulnerability and concentration (threat matrix
{_e(brief.matrix_version)}). Harm: {_e(brief.harm.title)} ({_e(brief.harm.unit)}), last 28 days; proactively detected
offences excluded. z: Poisson change against the 12-week baseline; * significant after Benjamini-Hochberg at a false
discovery rate of {brief.fdr:.0%} across all {brief.candidates:,} candidates{", ranks among all offences" if brief.category else ""}.</p>
<table><tr><th>#</th><th>Offence</th><th>Area</th><th>Score</th><th>Harm</th><th>Count</th><th>Expected</th><th>z</th>
<th>Why</th><th>Tasking</th></tr>{threats_rows}</table>
<h2>1b. Repeat locations: the {LOCATIONS_PRINTED} highest-harm blocks</h2>
<p class="note">Blocks with 3 or more incidents in the 28 days, ranked by harm ({_e(brief.harm.title)}). Expected: incidents
expected in 28 days from the 12 weeks before; z: Poisson z against it. Left out: offences flagged sensitive (homicide,
sexual offences) and domestic incidents, whose repeat locations would point at victims' homes; proactively detected
offences.</p>
<table><tr><th>#</th><th>Location</th><th>Beat, district</th><th>Offences (highest harm first)</th><th>Incidents</th>
<th>Harm</th><th>Expected</th><th>z</th><th>First – last</th><th>Tasking</th></tr>{location_rows}</table>
<h2>2. What changed, for real (significant at FDR {brief.fdr:.0%}, by {_e(brief.change_level)})</h2>
<table><tr><th>Window</th><th>Offence</th><th>{_e(brief.change_level.capitalize())}</th><th>Count</th><th>Expected</th><th>z</th><th>q</th><th>Change</th></tr>
{change_rows}</table>
<h2>3. Repeat victims, counted (never listed)</h2>
<p class="note">Victims with 2 or more incidents in the 365 days and at least one in the 28 days, counted per {level} and
offence of their recent incidents, by pseudonymous key: no victim is named or listed.</p>
<table><tr><th>Area</th><th>Offence</th><th>Repeat victims</th><th>Incidents here (28 days)</th><th>In 365 days</th>
<th>Under 18</th><th>65+</th><th>Domestic</th></tr>{victim_rows}</table>
<h2>4. Taskings due or overdue</h2>
<table><tr><th>#</th><th>Offence</th><th>Area</th><th>Owner</th><th>Action</th><th>Due</th><th>Status</th></tr>{due_rows}</table>
<h2>5. Headline harm: {_e(head["area"])}, this week against its baselines</h2>
<table><tr><th></th><th>This week</th><th>4-week average</th><th>z</th><th>Reading</th><th>Same week last year</th><th>z</th>
<th>Reading</th></tr>{headline_rows}</table>
<p class="note">z = 2(√current − √baseline), for harm on effective counts; |z| ≥ 3 is worth a look, |z| &lt; 2 is ordinary
variation.</p>
{weekly_chart_svg(brief.weekly, unit=brief.harm.unit, highlight=brief.week)}
{tasking_results_html(brief)}
<p class="note">{_e(brief.stamp)}</p>
</body></html>
"""


# ------------------------------------------------------------------------------------------ PDF
def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise BriefError("PDF needs Debian's chromium (apt-get install chromium); HTML output needs nothing.")


def html_to_pdf(document: str, out: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "brief.html"
        source.write_text(document, encoding="utf-8")
        command = [
            chromium_binary(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-extensions",
            f"--user-data-dir={Path(scratch) / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={Path(out).resolve()}",
            source.as_uri(),
        ]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": scratch}
        )
        if result.returncode != 0 or not Path(out).exists() or Path(out).stat().st_size == 0:
            raise BriefError(f"Chromium could not print the PDF: {result.stderr.strip()[-500:]}")


def write_brief(brief: Brief, out: Path) -> Path:
    out = Path(out)
    document = render_html(brief)
    if out.suffix.lower() in (".html", ".htm"):
        out.write_text(document, encoding="utf-8")
    elif out.suffix.lower() == ".pdf":
        html_to_pdf(document, out)
    else:
        raise BriefError(f"{out}: the brief is written as .html or .pdf")
    return out


def record_generation(state: State, brief: Brief, *, user: str, role: str | None, out: str) -> None:
    """Write the brief's generation to the audit log with everything needed to reproduce it."""
    state.record(
        user=user,
        role=role,
        action="brief_generated",
        page="brief",
        parameters={**brief.parameters, "out": out, "matrix_version": brief.matrix_version},
        data_version=brief.snapshot,
    )


def render_bytes(brief: Brief, fmt: str, *, user: str, role: str | None, state: State) -> bytes:
    """The brief rendered as ``fmt`` ('html' or 'pdf') and audited: what the dashboard's download buttons
    return for the brief the page shows (the CLI's ``ilp brief`` writes the same document)."""
    if fmt not in ("html", "pdf"):
        raise BriefError(f"the brief is rendered as html or pdf, not {fmt!r}")
    document = render_html(brief)
    if fmt == "html":
        data = document.encode("utf-8")
    else:
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "brief.pdf"
            html_to_pdf(document, out)
            data = out.read_bytes()
    record_generation(state, brief, user=user, role=role, out=f"download.{fmt}")
    return data


def build_from_warehouse(
    warehouse: Warehouse,
    request: BriefRequest | None = None,
    *,
    state: State | None = None,
    today: dt.date | None = None,
) -> Brief:
    """:func:`ilp.analytics.brief.build_brief` on the warehouse's current snapshot, with the app state's taskings."""
    with contextlib.closing(warehouse.connect()) as con:
        state = state or State()
        return build_brief(
            SnapshotReader(con),
            request,
            taskings=state.taskings(),
            today=today,
            comparisons=evaluation.recorded_comparisons(state),
        )


def generate(
    warehouse: Warehouse,
    out: Path,
    *,
    user: str,
    role: str | None = None,
    state: State | None = None,
    request: BriefRequest | None = None,
) -> Brief:
    """Build, write and audit one brief (``ilp brief``)."""
    state = state or State()
    brief = build_from_warehouse(warehouse, request, state=state)
    write_brief(brief, out)
    record_generation(state, brief, user=user, role=role, out=str(out))
    return brief
