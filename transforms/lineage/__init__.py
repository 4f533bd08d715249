"""OpenLineage datasets of each task run: which files and tables it read and wrote.

Airflow's OpenLineage provider emits an event when every task starts and ends, but it cannot
see what a Python task touched. The functions here say it, from what the tasks already
return (the files a load read, the release a publish wrote, the report's files), with the
names the OpenLineage naming spec gives them, so a published value can be followed back to
the landing files it came from. The DAGs hand the result to the provider.

Layer 7, beside ``report``: it names datasets of every stage, the release's files included.
"""
