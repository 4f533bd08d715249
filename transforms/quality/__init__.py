"""Data quality: ethnicity completeness, linkage, Great Expectations suites and validation."""
