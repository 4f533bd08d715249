"""Health-equity-indicators: the Airflow-free logic of the pipeline.

Every Airflow task and every `hei` command calls plain functions in this package, so the
same code is tested without a scheduler and runs unchanged under `dag.test()`,
LocalExecutor or a real deployment.
"""
