"""The indicator engine: counts in the warehouse, assembly into statistics, the stored values."""
