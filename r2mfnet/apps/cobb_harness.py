"""The Cobb-angle harnesses, under the name the applications have imported them by.

The harness itself lives below the applications, in :mod:`r2mfnet.evaluation.cobb` (sources
in, one table out) with its SpineWeb16 and synthetic data in
:mod:`r2mfnet.evaluation.cobb_spineweb16` and :mod:`r2mfnet.evaluation.cobb_synthetic`; this
module only re-exports the two entry points (``apps/compare`` uses ``evaluate_spineweb16``).
"""
from __future__ import annotations

from r2mfnet.evaluation.cobb_spineweb16 import evaluate_spineweb16
from r2mfnet.evaluation.cobb_synthetic import evaluate_synthetic

__all__ = ["evaluate_spineweb16", "evaluate_synthetic"]
