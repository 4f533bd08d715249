"""Airflow DAG ``publish_partnership``: the monthly partner release of the indicators.

Runs after ``compute_indicators`` has changed ``indicators.values``; writes a new, checked
release to the publish target and moves ``latest.json`` only when the data changed (see
transforms.publish.release).
"""

from dags.common.factory import publish_dag

publish_partnership = publish_dag()
