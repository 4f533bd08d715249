"""Airflow DAGs: one ``ingest_<source>`` DAG per source of ``transforms.config.sources``.

Each run loads every new or changed delivery in the landing zone up to its data interval's
month, then updates the source's staging Asset so downstream DAGs recompute the months that
changed. Adding a source to the catalogue adds its DAG; this file does not change.
"""

from dags.common.factory import ingest_dags

globals().update(ingest_dags())
