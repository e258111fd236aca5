"""DataError: a problem with the user's data, raised by every step from reading a CSV to splitting it.

Its own module so that reading, guessing the columns and encoding the labels can all raise it without
importing one another just for it.
"""


class DataError(ValueError):
    """A problem with the user's data, phrased so a student can act on it (what, where, what to do)."""
