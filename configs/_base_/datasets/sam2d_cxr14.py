# 2D SAM two-view training data from ChestX-ray14 (Wang et al., CVPR 2017; 1024 x 1024 PNGs),
# in the layout of the Adam configs: data/chestxray14/images/*.png and the image list
# data/chestxray14/train_official.txt (ChestX-ray14's `name label...` format; labels unused).
# Any folder of radiographs works too (PNG, JPEG, DICOM; ann_file = the folder):
#
#   --cfg-options train_dataloader.dataset.ann_file=/path/to/radiographs \
#       train_dataloader.dataset.data_prefix.img_path=''
#
# PNGs carry no pixel spacing: their pixels count as 1 mm, here and at inference
# (mmanat.fileio.read_xray), so a model trained on them matches other PNGs of that scale;
# DICOMs use their Pixel Spacing.
_base_ = ['./sam2d_two_view.py']

data_root = 'data/chestxray14'

train_dataloader = dict(
    _base_.two_view_loader,
    batch_size=16,
    num_workers=8,
    dataset=dict(
        type='RadiographDataset',
        data_root=data_root,
        ann_file='train_official.txt',
        data_prefix=dict(img_path='images'),
        load_size=None,
        pipeline=_base_.two_view_pipeline_2d))
