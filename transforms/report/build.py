"""Build the monthly assurance report: one self-contained HTML file and its tagged PDF.

The HTML carries its CSS and SVG inline and loads nothing (no script, font or image from
anywhere), so it opens from an email attachment or a SharePoint folder on an NHS laptop. It
is a function of the release and the month's audit alone: rebuilding a month's report from
the same release gives the same HTML. The PDF is the same document (A4, page numbers),
rendered by WeasyPrint as PDF/UA, which tags it for screen readers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import jinja2
from sqlalchemy.engine import Engine

from transforms.core.periods import month_bounds
from transforms.report import content
from transforms.report.inputs import (
    DUE_DAY,
    HTML_NAME,
    PDF_NAME,
    Release,
    deliveries,
    load_release,
)
from transforms.report.spc import MINIMUM_POINTS

log = logging.getLogger(__name__)

TEMPLATES = files("transforms.report") / "templates"  # package data
RUG_GROUPS = (
    "White",
    "Mixed",
    "Asian or Asian British",
    "Black or Black British",
    "Other ethnic group",
)
POLARITIES = {
    "high_is_good": "higher is better",
    "low_is_good": "lower is better",
    "none": "neither higher nor lower is better in itself",
}


@dataclass(frozen=True)
class Built:
    month: str
    release: str
    html: Path
    pdf: Path
    release_files: tuple[str, ...] = ()  # the release's files it was built from

    def to_xcom(self) -> dict:
        return {
            "month": self.month,
            "release": self.release,
            "html": str(self.html),
            "pdf": str(self.pdf),
            "release_files": list(self.release_files),
        }


def render_html(release: Release, engine: Engine) -> str:
    """The report's HTML for ``release`` (pipeline health for its month from ``engine``)."""
    month = release.month
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    month_name = f"{month_bounds(month)[0]:%B %Y}"
    wres, board_gaps = content.wres_blocks(release)
    return environment.get_template("assurance_report.html.j2").render(
        title=f"Race equality assurance report, {month_name}",
        css=(TEMPLATES / "report.css").read_text(),
        release=release,
        covers=release.manifest["covers"],
        themes=content.THEMES,
        blocks=content.blocks(release),
        rug_groups=RUG_GROUPS,
        polarities=POLARITIES,
        completeness=content.completeness(release),
        wres=wres,
        board_gaps=board_gaps,
        health=content.health(deliveries(engine, month)),
        month_name=month_name,
        due_day=DUE_DAY,
        minimum_points=MINIMUM_POINTS,
        trend_months=content.TREND_MONTHS,
    )


def write_pdf(html: str, path: Path) -> None:
    """The HTML as a tagged A4 PDF (WeasyPrint, PDF/UA-1: title, language, structure)."""
    import weasyprint  # a heavy import, needed only here

    weasyprint.HTML(string=html).write_pdf(path, pdf_variant="pdf/ua-1")


def build(engine: Engine, target: str, reports_dir: Path, month: str | None = None) -> Built:
    """Write ``<reports_dir>/<month>/assurance_report.html`` and ``.pdf`` from the release
    at ``target`` (the latest, or ``month``'s newest)."""
    release = load_release(target, month)
    html = render_html(release, engine)
    folder = reports_dir / release.month
    folder.mkdir(parents=True, exist_ok=True)
    html_path, pdf_path = folder / HTML_NAME, folder / PDF_NAME
    _replace(html_path, html.encode())
    temporary = pdf_path.with_suffix(".pdf.tmp")
    write_pdf(html, temporary)
    temporary.replace(pdf_path)
    log.info(
        "assurance report for %s (release %s): %s", release.month, release.release_id, html_path
    )
    return Built(release.month, release.release_id, html_path, pdf_path, release.files)


def _replace(path: Path, data: bytes) -> None:
    """Write ``path`` whole: a reader sees the old report or the new one, never half."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
