# SAM two-view training data from your own CT (or MR) volumes (SPEC 1.2).
#
# data_root: either the output folder of tools/preprocess.py (recommended: index.csv +
# memory-mapped 2 mm .npy volumes, random crops read only what they need) or a folder of
# NIfTI/NRRD/MetaImage files and DICOM series folders (read and resampled on the fly; slower).
# ann_file: '' (use data_root's index.csv or scan it) or a CSV (image[,label][,modality]) /
# text list, relative to data_root.
#
#   python tools/preprocess.py /path/to/my_cts --out data/ct_cache --workers 8
#   python tools/train.py configs/sam/sam_r18_fpn_ct.py \
#       --cfg-options train_dataloader.dataset.data_root=data/ct_cache
data_root = 'data/ct_cache'
ann_file = ''

sam_train_pipeline = [
    dict(type='LoadVolume'),
    # two views: scale s ~ U(0.8, 1.2) per view, crop box ceil(patch * s * 1.05) 2-mm voxels,
    # p = 0.8 overlap around a common seed point, resampled once to 2 mm * s, exact world
    # coordinate maps
    dict(type='RandomTwoViewCrop', patch_size=(32, 96, 96), spacing=2.0,
         scale_range=(0.8, 1.2), box_margin=1.05, overlap_prob=0.8, seed_margin=(4, 10, 10),
         rotation_range=0.0),
    # CT: [-1024, 3071] HU -> [0, 255] - 50; MR: volume 0.2/99.8 percentiles
    dict(type='NormalizeViewIntensity'),
    dict(type='RandomIntensityAugment', blur_prob=0.5, blur_sigma_mm=(0.0, 4.0),
         noise_prob=0.5, noise_std=(0.0, 4.0)),
    dict(type='PackSAMInputs'),
]

train_dataloader = dict(
    batch_size=6,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='VolumeListDataset',
        data_root=data_root,
        ann_file=ann_file,
        modality=None,  # per row / from the file; set 'CT' if the reader cannot tell
        pipeline=sam_train_pipeline))
