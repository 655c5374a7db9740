"""Hypothesis profiles for the fuzz tests: a short, reproducible one for ``make test``, a long one by hand.

``ci`` (the default) keeps the whole fuzz set well within a minute of CPU (about 20 s): 200
examples a test, a fixed seed (``derandomize``), no example database in the work tree. ``long``
explores: ``HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/unit/fuzz`` runs 5,000
examples a test from a random seed, keeps failures in ``.pytest_cache/hypothesis`` (replayed first
next time) and prints the seed and the blob for ``@reproduce_failure``. Both give every example a
deadline: a parser of outside input that takes longer than that on one input is a bug ("never
slow"), timed by hypothesis, not by a wall-clock assert.
"""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

DEADLINE = timedelta(milliseconds=1000)
"""Generous for a shared 2-core machine; the parsers answer in well under a millisecond."""

settings.register_profile(
    "ci",
    max_examples=200,
    deadline=DEADLINE,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=5000,
    deadline=DEADLINE,
    derandomize=False,
    database=DirectoryBasedExampleDatabase(".pytest_cache/hypothesis"),
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
