"""The ground floor: paths, whole-file writes and checked table reads, secrets, errors.

Every other package of :mod:`jasco_utils` may import these modules; they import none of it.
"""

__version__ = "0.1.0"
