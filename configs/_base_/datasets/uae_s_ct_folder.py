# UAE-S training data from your own CTs (SPEC 2): intra-volume view pairs from every CT of
# `ann_file` (or of the tools/preprocess.py cache in data_root) and inter-subject pairs from the
# CTs that have an organ label map (TotalSegmentator-style: one integer id per structure, the
# same id meaning the same structure in every scan, 0 = background), listed in
# `label_ann_file`, a CSV with columns image,label[,modality] relative to data_root.
# Different rows of that CSV must be different patients.
#
#   tools/dist_train.sh configs/sam/uae_s_ct_folder.py 8 --cfg-options \
#       train_dataloader.dataset.datasets.0.data_root=data/ct_cache \
#       train_dataloader.dataset.datasets.1.source.data_root=data/ct_labelled \
#       train_dataloader.dataset.datasets.1.source.ann_file=labels.csv
data_root = 'data/ct_cache'
ann_file = ''
label_data_root = 'data/ct_labelled'
label_ann_file = 'labels.csv'

uae_s_intra_pipeline = [
    dict(type='LoadVolume'),
    dict(type='RandomTwoViewCrop', patch_size=(32, 96, 96), spacing=2.0,
         scale_range=(0.8, 1.2), box_margin=1.05, overlap_prob=0.8, seed_margin=(4, 10, 10),
         rotation_range=0.0),
    dict(type='NormalizeViewIntensity'),
    dict(type='RandomIntensityAugment', blur_prob=0.5, blur_sigma_mm=(0.0, 4.0),
         noise_prob=0.5, noise_std=(0.0, 4.0)),
    dict(type='PackSAMInputs'),
]
uae_s_inter_view_pipeline = [
    dict(type='NormalizeViewIntensity'),
    dict(type='RandomIntensityAugment', blur_prob=0.5, blur_sigma_mm=(0.0, 4.0),
         noise_prob=0.5, noise_std=(0.0, 4.0)),
]

train_dataloader = dict(
    batch_size=5,                 # per GPU: 4 intra + 1 inter pair
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='MixedBatchSampler', num_inter=1),
    # keeps samples whole: pseudo_collate would merge intra and inter samples' dicts
    collate_fn=dict(type='mmanat_pair_collate'),
    dataset=dict(
        type='ConcatDataset',
        ignore_keys=['dataset_type'],
        datasets=[
            dict(type='VolumeListDataset', data_root=data_root, ann_file=ann_file,
                 modality='CT', pipeline=uae_s_intra_pipeline),
            # items without a pipeline are read by LoadVolume(with_label=True) inside
            dict(type='CrossSubjectPairDataset',
                 source=dict(type='VolumeListDataset', data_root=label_data_root,
                             ann_file=label_ann_file, modality='CT'),
                 crop_size=(120, 180, 180), spacing=2.0,
                 view_pipeline=uae_s_inter_view_pipeline,
                 pipeline=[dict(type='PackSAMInputs')]),
        ]))
