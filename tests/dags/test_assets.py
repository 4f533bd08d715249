"""Each Asset stands for a table declared in ``transforms/warehouse/tables.py``.

The Asset URIs are spelled in ``dags/common/assets.py`` because DAG parsing must stay light
(no SQLAlchemy); this checks that they name the tables the tasks actually write.
"""

from __future__ import annotations

from dags.common import assets
from transforms.warehouse import tables


def uri(table) -> str:
    return f"warehouse://{table.schema}/{table.name}"


def test_every_asset_names_a_declared_table():
    """The release and the report are the Assets that are not tables."""
    declared = {uri(t) for t in tables.metadata.tables.values()}
    named = [
        a.uri
        for a in vars(assets).values()
        if type(a).__name__ == "Asset" and a not in (assets.RELEASE_ASSET, assets.REPORT_ASSET)
    ]
    named += [a.uri for a in assets.STAGING_ASSETS.values()]
    assert named and set(named) <= declared


def test_the_assets_name_the_tables_their_tasks_write():
    assert assets.PERSON_ETHNICITY_ASSET.uri == uri(tables.core_person_ethnicity)
    assert assets.COMPLETENESS_ASSET.uri == uri(tables.quality_ethnicity_completeness)
    assert assets.INDICATOR_VALUES_ASSET.uri == uri(tables.indicators_values)
    for name, asset in assets.STAGING_ASSETS.items():
        assert asset.uri == uri(tables.STAGING[name])
