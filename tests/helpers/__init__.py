"""Helpers shared by several test modules (tiny configs, analytic embedding maps, stand-ins).

Import them as ``from tests.helpers.<module> import ...``; pytest.ini puts the repository root
on ``sys.path`` (``pythonpath = .``).
"""
