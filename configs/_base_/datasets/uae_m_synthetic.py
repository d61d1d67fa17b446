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
# Stage 2 as released (alibaba-damo-academy/self-supervised-anatomical-embedding-v2,
# configs/samv2/samv2_ct_mri_inter.py and the crop of
# sam/models/frameworks/sam_v2_uniform_cross_volume_mask_dual_head_MRI_CT.py): per view an
# isotropic spacing 2 mm * U(0.8, 1.2) (DynamicSpacing) and a rotation of U(-5, 5) degrees about
# each axis (RandomAffine3d); the (104, 128, 128) MR window inside the MR body bounding box;
# +-10 voxels per border and view; queries from MR foreground only (view_query_mask, packed
# as data_samples['query_mask'] for the fine pair sampler); RandHistogramShift(prob=0.9,
# (5, 15) points, inversion 0.3 before
# the curve, min-max range 0.3) inside each view's body mask; then torchio RandomBlur with a
# per-axis std U(0, 4) mm on every view (RandomBlur3d); no noise. The synthetic pairs carry no
# body masks: the CT body mask (HU rule) stands for the MR one (mr_mask_source='ct'), since Otsu
# on the synthetic MR keeps only its bright tissue.
uae_m_inter_released_pipeline = [
    dict(type='RandomInterModalityCrop', patch_size=(104, 128, 128), spacing=2.0, jitter=10,
         placement='mr_body', scale_range=(0.8, 1.2), rotation_range=5.0, with_masks=True,
         mr_mask_source='ct'),
    dict(type='RandHistogramShift', prob=0.9, num_control_points=(5, 15), invert_prob=0.3,
         rescale_prob=0.3, mode='released'),
    dict(type='TorchioViewIntensity', transforms=[dict(type='RandomBlur', std=(0.0, 4.0))]),
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
