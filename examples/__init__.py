"""The source articles' event-driven systems, each an :class:`lake.apps.App` (``examples/<name>/app.py``)
with a scenario (``examples/<name>/scenario.py``), run by ``lake example <name>`` on the embedded stack."""
