"""Airflow DAG ``assurance_report``: the monthly partnership assurance report.

Runs after ``publish_partnership`` has published a new release, and builds the report from
that release (see transforms.report.build).
"""

from dags.common.factory import report_dag

assurance_report = report_dag()
