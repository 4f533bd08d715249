"""Every Asset the DAGs update or watch, declared once: each stands for a warehouse table.

A DAG that updates a table lists its Asset as an outlet; a DAG scheduled on an Asset runs
when that table changed. The URI is ``warehouse://<schema>/<table>``; the partnership release
(``latest.json`` of the publish target) is ``publish://partnership/release``, and the
assurance report ``report://partnership/assurance``.
"""

from __future__ import annotations

from airflow.sdk import Asset

from transforms.config.sources import SOURCES


def table_asset(qualified_table: str) -> Asset:
    """The Asset of a table named ``schema.table``."""
    schema, table = qualified_table.split(".")
    return Asset(f"warehouse://{schema}/{table}")


STAGING_ASSETS = {name: table_asset(source.qualified_table) for name, source in SOURCES.items()}
PERSON_ETHNICITY_ASSET = table_asset("core.person_ethnicity")
COMPLETENESS_ASSET = table_asset("quality.ethnicity_completeness")
INDICATOR_VALUES_ASSET = table_asset("indicators.values")
RELEASE_ASSET = Asset("publish://partnership/release")
REPORT_ASSET = Asset("report://partnership/assurance")
