# Test-time lesion pairs in the Deep Lesion Tracker (DLT) layout: data/dlt/test.json (records
# "source", "target", "source center", "target center", spacings, boxes, RECIST diameters)
# and the NIfTI sub-volumes it names, in the same folder. Each pair's source lesion centre is
# found in the target by LandmarkTestLoop (mmanat.apis.embed + match); LesionTrackingMetric
# reports CPM@Radius, CPM@10mm and MED (mm), as the DLT evaluation defines them.
#
# A synthetic stand-in: python tools/benchmark.py --only lesion_tracking writes test.json and
# its volumes to work_dirs/benchmark/lesion_tracking/ (longitudinal_lesion_cases(out_dir=...)).
#
#   python tools/test.py CONFIG CHECKPOINT \
#       --cfg-options test_dataloader.dataset.ann_file=data/dlt/test.json
_base_ = ['./pair_test_loader.py']

test_dataloader = dict(
    dataset=dict(type='LesionPairDataset', ann_file='data/dlt/test.json', modality='CT'))
test_evaluator = dict(type='LesionTrackingMetric')
# the predicted target centres go where LesionTrackingMetric reads them
test_cfg = dict(type='LandmarkTestLoop', stable_points=False, match_method='reference',
                pred_key='pred_center')
