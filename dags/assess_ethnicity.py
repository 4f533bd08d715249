"""Airflow DAG ``assess_ethnicity``: runs when any staging table changes.

Rebuilds ``core.person_ethnicity`` (each person's best-known ethnicity: GP record first, then
the most recent known code in secondary care) and the ``linked`` rows of
``quality.ethnicity_completeness``.
"""

from dags.common.factory import assess_dag

assess_ethnicity = assess_dag()
