"""From the landing zone to staging: finding, reading, row rules, loading, the file-load audit."""
