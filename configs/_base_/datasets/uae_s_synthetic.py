# UAE-S training data from synthetic subjects generated on the fly (SPEC 2; no files needed).
# Each batch (per GPU) = 4 intra-volume view pairs (the SAM two-view pipeline, SPEC 1.2) +
# 1 inter-subject pair (two different subjects with organ label maps, random (180, 180, 120)
# (y, x, z) crops at 2 mm), mixed by MixedBatchSampler; UAESDataPreprocessor batches the two
# kinds apart and UAES uses one of them per iteration.
subject_spacing = 2.0     # mm; synthetic subjects are 352 x 288 x 320 mm
num_subjects = 1000       # seeds 0..999 (evaluate on other seeds)

uae_s_intra_pipeline = [
    dict(type='RandomTwoViewCrop', patch_size=(32, 96, 96), spacing=2.0,
         scale_range=(0.8, 1.2), box_margin=1.05, overlap_prob=0.8, seed_margin=(4, 10, 10),
         rotation_range=0.0),
    dict(type='NormalizeViewIntensity'),
    dict(type='RandomIntensityAugment', blur_prob=0.5, blur_sigma_mm=(0.0, 4.0),
         noise_prob=0.5, noise_std=(0.0, 4.0)),
    dict(type='PackSAMInputs'),
]
# per subject of an inter pair, after its crop (the same intensity rules as the views)
uae_s_inter_view_pipeline = [
    dict(type='NormalizeViewIntensity'),
    dict(type='RandomIntensityAugment', blur_prob=0.5, blur_sigma_mm=(0.0, 4.0),
         noise_prob=0.5, noise_std=(0.0, 4.0)),
]
synthetic_subjects = dict(type='SyntheticSubjectDataset', num_subjects=num_subjects,
                          base_seed=0, modalities=('CT', ), spacing=subject_spacing)

train_dataloader = dict(
    batch_size=5,                 # per GPU: 4 intra + 1 inter pair
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),      # mmengine needs one
    batch_sampler=dict(type='MixedBatchSampler', num_inter=1),
    # keeps samples whole: pseudo_collate would merge intra and inter samples' dicts
    collate_fn=dict(type='mmanat_pair_collate'),
    dataset=dict(
        type='ConcatDataset',
        ignore_keys=['dataset_type'],
        datasets=[
            dict(synthetic_subjects, pipeline=uae_s_intra_pipeline),
            dict(type='CrossSubjectPairDataset', source=synthetic_subjects,
                 crop_size=(120, 180, 180), spacing=2.0,
                 view_pipeline=uae_s_inter_view_pipeline,
                 pipeline=[dict(type='PackSAMInputs')]),
        ]))
