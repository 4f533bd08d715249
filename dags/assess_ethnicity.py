"""Airflow DAG ``assess_ethnicity``: runs when any staging table changes.

Rebuilds ``core.person_ethnicity`` (each person's best-known ethnicity: GP record first, then
the most recent known code in secondary care) and the ``linked`` rows of
``quality.ethnicity_completeness``.
"""

from hei.dag_factory import assess_dag
from transforms.sources import SOURCES

assess_ethnicity = assess_dag([source.asset_uri for source in SOURCES.values()])
