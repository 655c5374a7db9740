"""Hypothesis profiles for the fuzz tests: a short, reproducible one for ``make test``, a long one by hand.

``ci`` (the default) keeps the whole fuzz set within about a minute of CPU: few examples, a fixed
seed (``derandomize``), no example database written into the work tree. ``long`` explores:
``HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/unit/fuzz`` runs many more examples
from a random seed, keeps found failures in ``.hypothesis/``, and prints the blob to reproduce a
failure with ``@reproduce_failure``. Both give every example a deadline: a parser of outside
input that takes longer on one input than that is a bug ("never slow"), timed by hypothesis,
not by a wall-clock assert.
"""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

DEADLINE = timedelta(milliseconds=1000)
"""Generous for a shared 2-core machine; the parsers answer in well under a millisecond."""

settings.register_profile(
    "ci",
    max_examples=60,
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
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
