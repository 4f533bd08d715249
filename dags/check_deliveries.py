"""Airflow DAG ``check_deliveries``: daily, the months each source has not delivered on time.

Alerts through the webhook on the first day a month is late and weekly after that, naming
the source, the month and the days late (see transforms.ops.deliveries).
"""

from dags.common.factory import deliveries_dag

check_deliveries = deliveries_dag()
