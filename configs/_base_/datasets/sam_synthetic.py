# SAM two-view training data from synthetic subjects generated on the fly (no files needed).
# Each item of SyntheticSubjectDataset is a results dict with 'image' (MedicalImage, CT- or
# MR-like), 'label', 'modality', 'landmarks', 'subject_id'; the two-view pipeline is the same
# as for real volumes (SPEC 1.2), without LoadVolume.
sam_train_pipeline = [
    dict(type='RandomTwoViewCrop', patch_size=(32, 96, 96), spacing=2.0,
         scale_range=(0.8, 1.2), box_margin=1.05, overlap_prob=0.8, seed_margin=(4, 10, 10),
         rotation_range=0.0),
    dict(type='NormalizeViewIntensity'),
    dict(type='RandomIntensityAugment', blur_prob=0.5, blur_sigma_mm=(0.0, 4.0),
         noise_prob=0.5, noise_std=(0.0, 4.0)),
    dict(type='PackSAMInputs'),
]

train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='SyntheticSubjectDataset',
        num_subjects=1000,  # item i = subject of seed base_seed + i (about 1 s each)
        base_seed=0,
        modalities=('CT', ),
        spacing=2.0,
        pipeline=sam_train_pipeline))
