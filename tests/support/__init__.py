"""Helpers shared by the test modules: import them from here, never from another test module.

- ``deliveries``: landing files for every source (clean rows, faults), loading them the way the
  DAG does, and reading the outcome back from the warehouse;
- ``indicators``: indicator rows computed from hand-made counts;
- ``postgres``: finding the test PostgreSQL server and emptying a warehouse on it;
- ``deploy``: reading docker-compose.yml and the Dockerfile as Compose and Docker would.

Fixtures stay in ``tests/conftest.py`` (pytest finds them there).
"""
