"""Evaluation: metrics (landmark error, lesion-tracking CPM/MED), the DLT lesion-pair format,
registration baselines, benchmark case generators, the benchmark runners and the test loop of
``tools/test.py``.

Everything here imports cheaply: SimpleITK, scipy, the synthetic generator and the inference
API are imported inside the functions that use them, and :class:`LandmarkTestLoop` (which
needs ``mmengine.runner``) when first accessed; the ``LOOPS`` registry imports
:mod:`mmanat.evaluation.test_loop` when a config names it.
"""
from .baselines import (AntsAffineMethod, AntsSyNMethod, IdentityMethod, RegistrationResult,
                        SitkAffineMethod, SitkBSplineFromIdentityMethod, SitkBSplineMethod,
                        default_baselines, register_affine, register_bspline,
                        transform_points)
from .benchmark import (BenchmarkTable, EmbeddingRegistrationMethod, MMAnatMethod,
                        mmanat_methods, run_landmark_benchmark, run_lesion_benchmark,
                        run_speed_benchmark)
from .cases import (LandmarkCase, LesionCase, RandomDeformation, cross_subject_cases,
                    ct_mr_registration_cases, deform_case, deformation_cases,
                    longitudinal_lesion_cases, random_deformation, sample_body_points,
                    warp_image)
from .dlt_format import (LesionPair, attach_predictions, evaluate_dlt, mm_to_voxel,
                         read_dlt_json, read_predictions, voxel_to_mm, write_dlt_json,
                         write_predictions)
from .metrics import (LandmarkMetric, LesionTrackingMetric, landmark_summary,
                      lesion_tracking_metrics, radial_errors, summarize_errors)

__all__ = [
    # metrics
    'LandmarkMetric', 'LesionTrackingMetric', 'radial_errors', 'summarize_errors',
    'landmark_summary', 'lesion_tracking_metrics',
    # DLT format
    'LesionPair', 'read_dlt_json', 'write_dlt_json', 'read_predictions', 'write_predictions',
    'attach_predictions', 'evaluate_dlt', 'voxel_to_mm', 'mm_to_voxel',
    # baselines
    'IdentityMethod', 'SitkAffineMethod', 'SitkBSplineMethod', 'SitkBSplineFromIdentityMethod',
    'AntsAffineMethod', 'AntsSyNMethod', 'register_affine',
    'register_bspline', 'RegistrationResult', 'transform_points', 'default_baselines',
    # cases
    'LandmarkCase', 'LesionCase', 'RandomDeformation', 'random_deformation', 'deform_case',
    'warp_image', 'sample_body_points', 'deformation_cases', 'cross_subject_cases',
    'longitudinal_lesion_cases', 'ct_mr_registration_cases',
    # benchmark runners
    'BenchmarkTable', 'EmbeddingRegistrationMethod', 'MMAnatMethod', 'mmanat_methods',
    'run_landmark_benchmark', 'run_lesion_benchmark', 'run_speed_benchmark',
    # test loop (tools/test.py)
    'LandmarkTestLoop'
]


def __getattr__(name):
    """``LandmarkTestLoop`` on first access (importing mmengine.runner takes a second)."""
    if name == 'LandmarkTestLoop':
        from .test_loop import LandmarkTestLoop
        return LandmarkTestLoop
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
