"""The operator's side of the pipeline: the ``hei`` command line and the Airflow DAG factory.

``transforms`` holds the logic and never imports Airflow; this package wires it into DAGs
and runs those DAGs through Airflow itself.
"""
