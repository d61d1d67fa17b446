# UAE-M data from synthetic subjects generated on the fly (SPEC 3).
# Stage 1 (intra-volume SAM views with contrast augmentation): CT with p = 0.6, MR otherwise;
# views rotated by up to 5 degrees; RandHistogramShift inside the body mask.
uae_m_intra_pipeline = [
    dict(type='RandomTwoViewCrop', patch_size=(32, 96, 96), spacing=2.0,
         scale_range=(0.8, 1.2), box_margin=1.05, overlap_prob=0.8, seed_margin=(4, 10, 10),
         rotation_range=5.0),
    dict(type='NormalizeViewIntensity'),
    dict(type='RandHistogramShift', prob=0.9, num_control_points=(5, 15), invert_prob=0.3,
         rescale_prob=0.3),
    dict(type='RandomIntensityAugment', blur_prob=0.5, blur_sigma_mm=(0.0, 4.0),
         noise_prob=0.5, noise_std=(0.0, 4.0)),
    dict(type='PackSAMInputs'),
]
# Stage 2 (inter-modality): the same (104, 128, 128) region of an aligned CT/MR pair,
# +-10 voxel jitter per border; view 0 = CT, view 1 = MR.
uae_m_inter_pipeline = [
    dict(type='RandomInterModalityCrop', patch_size=(104, 128, 128), spacing=2.0, jitter=10),
    dict(type='RandomIntensityAugment', blur_prob=0.5, blur_sigma_mm=(0.0, 4.0),
         noise_prob=0.5, noise_std=(0.0, 4.0)),
    dict(type='PackSAMInputs', meta_keys=('subject_id', 'modality', 'view_modalities')),
]
uae_m_intra_dataset = dict(
    type='SyntheticSubjectDataset', num_subjects=1000, base_seed=0, modalities=('CT', 'MR'),
    modality_probs=(0.6, 0.4), mr_presets=('T1', 'T2', 'random'), spacing=2.0,
    pipeline=uae_m_intra_pipeline)
uae_m_inter_dataset = dict(
    type='SyntheticSubjectDataset', num_subjects=1000, base_seed=0, modalities=('CT', 'MR'),
    mr_presets=('T1', 'T2', 'random'), spacing=2.0, aligned_pair=True,
    pipeline=uae_m_inter_pipeline)
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=uae_m_intra_dataset)
