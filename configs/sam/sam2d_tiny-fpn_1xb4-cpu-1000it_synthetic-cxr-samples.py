# The CPU 2D SAM on synthetic chest radiographs plus the real sample radiograph
# (data/samples/xray/RG1_UNCR.dcm, a computed radiograph from pydicom-data) under strong
# intensity augmentation; about one pair in six comes from the real image.
#
#   python tools/fetch_sample_data.py
#   python tools/train.py configs/sam/sam2d_tiny-fpn_1xb4-cpu-1000it_synthetic-cxr-samples.py
#
# Your own radiographs instead: set the RadiographDataset's ann_file to a folder (PNG, JPEG,
# DICOM) or an image list, and `times` so that they make the share of pairs you want.
_base_ = ['./sam2d_tiny-fpn_1xb4-cpu-300it_synthetic-cxr.py']

# RG1_UNCR.dcm stores Pixel Spacing 0\0 (unknown; read as 1 mm). Its rib cage spans about
# 1750 of its 1841 columns, i.e. about 0.2 mm per pixel for a 330-370 mm wide thorax: that
# assumed spacing puts it on the scale of the synthetic radiographs (an estimate, not a tag).
real_xray = dict(
    type='RepeatDataset',
    times=40,
    dataset=dict(type='RadiographDataset', ann_file='data/samples/xray', cache_images=True,
                 pipeline=[dict(_base_.to_planar_2mm, spacing=(0.2, 0.2))]
                 + _base_.two_view_pipeline_2d_2mm_strong[1:]))
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        ignore_keys=['classes', 'dataset_type'],
        datasets=[_base_.synthetic_cxr, real_xray]))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1000)
