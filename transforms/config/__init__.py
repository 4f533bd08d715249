"""What the pipeline is configured by: settings, the source contract, the indicator catalogue."""
