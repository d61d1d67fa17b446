# SAM two-view training data from your own CT (or MR) volumes.
#
# data_root: either the output folder of tools/preprocess.py (recommended: index.csv +
# memory-mapped 2 mm .npy volumes, random crops read only what they need) or a folder of
# NIfTI/NRRD/MetaImage files and DICOM series folders (read and resampled on the fly; slower).
# ann_file: '' (use data_root's index.csv or scan it) or a CSV (image[,label][,modality]) /
# text list, relative to data_root.
#
#   python tools/preprocess.py /path/to/my_cts --out data/ct_cache --workers 8
#   python tools/train.py configs/sam/sam_r18-fpn3d_8xb6-20k_ct-2mm.py \
#       --cfg-options train_dataloader.dataset.data_root=data/ct_cache
#
# Intensities: the released augmentation (_base_.two_view_pipeline_released, see
# sam_two_view.py): noise with std ~ U(0, 0.001) after the [-1024, 3071] HU -> [0, 255] - 50
# rescale, no blur, as the view pipelines of configs/sam/sam_NIHLN.py in
# alibaba-damo-academy/self-supervised-anatomical-embedding-v2. For mmanat's stronger blur +
# noise use _base_.two_view_pipeline; for the blur of that repository's
# configs/sam/sam_deeplesion.py replace the augment step by _base_.view_augment_released_blur.
_base_ = ['./sam_two_view.py']

data_root = 'data/ct_cache'
ann_file = ''

train_dataloader = dict(
    _base_.two_view_loader,
    batch_size=6,
    num_workers=4,
    dataset=dict(
        type='VolumeListDataset',
        data_root=data_root,
        ann_file=ann_file,
        modality=None,  # per row / from the file; set 'CT' if the reader cannot tell
        pipeline=[dict(type='LoadVolume')] + _base_.two_view_pipeline_released))
