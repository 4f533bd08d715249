"""For the people running the pipeline: alerts and the status of loads."""
