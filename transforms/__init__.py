"""Health-equity-indicators: the Airflow-free logic of the pipeline, one package per stage.

Every Airflow task and every `hei` command calls plain functions in this package, so the
same code is tested without a scheduler and runs unchanged under `dag.test()`,
LocalExecutor or a real deployment.

Import rules (checked by ``tests/unit/test_layout.py``), lowest layer first; a package
imports only from its own layer and those below it:

1. ``core``: pure computation. No I/O beyond the reference data shipped inside it; no
   database, Great Expectations, Airflow or network library.
2. ``config``: the settings, the source contract and the indicator catalogue.
3. ``warehouse``: the engine, DDL and bulk writes; the only dialect-aware code.
4. ``quality``: completeness, linkage and Great Expectations validation.
5. ``ingest`` and ``indicators`` (independent of each other) and ``ops``.
6. ``publish``: the partner release, built from what the indicators wrote.
7. ``report``: the monthly assurance report, built from a published release; and
   ``lineage``: the OpenLineage datasets each task read and wrote, at every stage.
8. ``tasks``: the steps the DAG tasks call; nothing imports it but the DAGs and the CLI.

Nothing here imports Airflow, ``dags``, ``hei`` or the synthetic data generator ``synth``.
"""
