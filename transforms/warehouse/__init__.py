"""The warehouse: engine and locks, DDL (``sql/``), bulk writes, analyst roles."""
