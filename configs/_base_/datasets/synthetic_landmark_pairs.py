# Test-time landmark pairs from synthetic subjects (no download): item i is the pair
# (subject seed + 2k, subject seed + 2k + 1) of benchmark 2 of tools/benchmark.py
# (mmanat.evaluation.cross_subject_cases), imaged over z_range mm above the pelvic floor of the
# phantom. The named landmarks of the template are found in the target by embedding both
# images (mmanat.apis.embed) and matching (mmanat.apis.match) in LandmarkTestLoop; the
# LandmarkMetric reports the mean radial error in mm.
#
#   python tools/test.py CONFIG CHECKPOINT --out results.json
_base_ = ['./pair_test_loader.py']

test_dataloader = dict(
    dataset=dict(
        type='SyntheticLandmarkPairDataset',
        modality_pairs=(('CT', 'CT'), ),
        num_pairs=4,  # pairs per modality pair
        seed=0,
        spacing=2.0,
        margin_mm=4.0,
        z_range=(250.0, 570.0)))
test_evaluator = dict(type='LandmarkMetric', thresholds=(5.0, 10.0))
test_cfg = dict(type='LandmarkTestLoop', stable_points=False, match_method='reference')
