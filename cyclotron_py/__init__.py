"""Cyclotron: capability parity for a fleet of personal and developer machines."""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
