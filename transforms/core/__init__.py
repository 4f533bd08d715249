"""Pure computation: periods, ethnicity codes, identifiers, statistics, disclosure control.

No I/O but reading the reference data shipped in ``reference/``; imports nothing from the
other packages of ``transforms``.
"""
