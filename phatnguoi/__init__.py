"""phatnguoi: camera traffic enforcement for Vietnamese cities.

This package composes the others (streams, detector, plates, violations, models, api): the CLI, the
edge worker wiring, the demo and the benchmarks live here.
"""

__version__ = "0.1.0"
