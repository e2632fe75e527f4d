"""Former name of :mod:`r2mfnet.evaluation.score_views`: kept only for processes started before the rename.

Training runs started before the rename (``results/spineweb16_long``) import
``r2mfnet.evaluation.evaluate`` when their training ends; this alias keeps them from failing
after hours of work. Nothing in the repository imports it (``tests/test_layering.py`` checks);
delete it once those runs are finished.
"""
from r2mfnet.evaluation.score_views import evaluate_records, print_summary  # noqa: F401
