# UAE-M training data (Bai et al., "UAE: Universal anatomical embedding on multi-modality
# medical images", 2023, arXiv:2311.15111) from synthetic subjects generated on the fly.
_base_ = ['./sam_two_view.py']

# Stage 1 (intra-volume SAM views with contrast augmentation): CT with p = 0.6, MR otherwise;
# views rotated by up to 5 degrees; RandHistogramShift inside the body mask.
uae_m_intra_pipeline = [
    dict(_base_.view_crop, rotation_range=5.0),
    _base_.view_normalize,
    dict(type='RandHistogramShift', prob=0.9, num_control_points=(5, 15), invert_prob=0.3,
         rescale_prob=0.3),
    _base_.view_augment,
    dict(type='PackSAMInputs'),
]
# Stage 2 (inter-modality): the same (104, 128, 128) (z, y, x) region of an aligned CT/MR
# pair, +-10 voxel jitter per border; view 0 = CT, view 1 = MR.
uae_m_inter_pipeline = [
    dict(type='RandomInterModalityCrop', patch_size=(104, 128, 128), spacing=2.0, jitter=10),
    _base_.view_augment,
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
    _base_.two_view_loader,
    batch_size=2,
    dataset=uae_m_intra_dataset)
