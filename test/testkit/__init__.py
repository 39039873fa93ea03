"""Helpers the test tiers share: frames and buffers (``frames``), stand-in models
(``fakes``), duck-typed camera messages (``msgs``) and the real node and publisher processes
of test/ros (``ros``).

Importable as ``testkit`` from every test: pyproject's pytest options put ``test/`` on
``sys.path`` (``pythonpath``).  Not named ``test.support``: that is the standard library's.
"""
