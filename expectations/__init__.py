"""Great Expectations suites, one pair per source, built from the source catalogue.

``<source>.structure`` restates the data contract (columns, blanks, code sets, ranges, date
windows, date order) as expectations: a failure is a hard failure and rejects the delivery.
``<source>.completeness`` holds ethnicity recording to the source's threshold: a failure is a
data-quality warning, never a rejection.
"""
