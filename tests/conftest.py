"""Test-wide settings.

The result cache (advisor/cache.py) is off for the whole suite: ``LOSS_ADVISOR_CACHE=off`` is set here, at
import, before any fixture starts a server or a command, so every ``recommend()`` and every child process
(``advisor-cli``, servers, README blocks) computes afresh and nothing is written to the user's cache folder.
A test that exercises the cache opts in with an explicit path under ``tmp_path`` (``cache=PATH``,
``--cache PATH``) or by setting the variable to such a path with ``monkeypatch.setenv``.
"""

from __future__ import annotations

import os

# advisor.cache.CACHE_ENV, written out: importing the package here would load it before any test does.
os.environ["LOSS_ADVISOR_CACHE"] = "off"
