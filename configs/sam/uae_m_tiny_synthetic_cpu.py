# A tiny UAE-M stage 2 for CPU: aligned synthetic CT/MR pairs at 4 mm, inter-modality crops
# (48, 64, 64) at 2 mm with +-5 voxel jitter.
#   python tools/train.py configs/sam/uae_m_tiny_synthetic_cpu.py --cfg-options load_from=S1
_base_ = ['./uae_m_intra_tiny_synthetic_cpu.py']
tiny_inter_pipeline = [
    dict(type='RandomInterModalityCrop', patch_size=(48, 64, 64), spacing=2.0, jitter=5),
    dict(type='RandomIntensityAugment', blur_prob=0.5, blur_sigma_mm=(0.0, 4.0),
         noise_prob=0.5, noise_std=(0.0, 4.0)),
    dict(type='PackSAMInputs', meta_keys=('subject_id', 'modality', 'view_modalities')),
]
train_dataloader = dict(
    batch_size=2,
    dataset=dict(
        _delete_=True, type='SyntheticSubjectDataset', num_subjects=200, base_seed=0,
        modalities=('CT', 'MR'), mr_presets=('T1', 'T2', 'random'), spacing=4.0,
        aligned_pair=True,
        pipeline=tiny_inter_pipeline))
