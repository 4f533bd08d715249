"""The Airflow DAG files (thin: they wire tasks) and, in ``common/``, the wiring they share."""
