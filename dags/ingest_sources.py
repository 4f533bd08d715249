"""Airflow DAGs: one ``ingest_<source>`` DAG per source in the catalogue (``transforms.sources``).

Each run loads every new or changed delivery in the landing zone up to its data interval's
month, then updates the source's staging Asset so downstream DAGs recompute the months that
changed. Adding a source to the catalogue adds its DAG; this file does not change.
"""

from hei.dag_factory import ingest_dag
from transforms.sources import SOURCES

for _source in SOURCES.values():
    globals()[f"ingest_{_source.name}"] = ingest_dag(_source.name, _source.title, _source.asset_uri)
