"""Airflow DAG ``compute_indicators``: the indicator catalogue into ``indicators.values``.

Runs after ``assess_ethnicity`` has refreshed best-known ethnicity following a staging change;
recomputes only the indicator periods whose inputs changed (see transforms.indicators.store).
"""

from dags.common.factory import indicators_dag

compute_indicators = indicators_dag()
