"""The DAG factory and Asset declarations; ignored by the DAG processor (``.airflowignore``)."""
