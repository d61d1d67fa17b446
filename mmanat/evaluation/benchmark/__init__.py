"""Benchmarks: methods side by side on cases with exact ground truth (``tools/benchmark.py``).

* :mod:`.methods` - trained models as methods (:class:`MMAnatMethod`, UAE-M registration);
* :mod:`.landmark_runner` / :mod:`.lesion_runner` - landmark and lesion-tracking benchmarks;
* :mod:`.speed` - embedding and matching speed;
* :mod:`.table` / :mod:`.report` - result tables, the markdown report and the JSON output.
"""
from .landmark_runner import BENCHMARKS, run_landmark_benchmark
from .lesion_runner import run_lesion_benchmark
from .methods import (EmbeddingRegistrationMethod, MMAnatMethod, method_unavailable,
                      mmanat_methods, model_image_ndim, timed_call)
from .report import machine_info, write_json, write_report
from .speed import run_speed_benchmark
from .table import BenchmarkTable

__all__ = [
    'BENCHMARKS', 'BenchmarkTable', 'MMAnatMethod', 'EmbeddingRegistrationMethod',
    'mmanat_methods', 'timed_call', 'method_unavailable', 'model_image_ndim',
    'run_landmark_benchmark', 'run_lesion_benchmark',
    'run_speed_benchmark', 'machine_info', 'write_report', 'write_json'
]
