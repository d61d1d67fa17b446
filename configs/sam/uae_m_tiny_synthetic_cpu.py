# A tiny UAE-M stage 2 for CPU: aligned synthetic CT/MR pairs at 4 mm, inter-modality crops
# (48, 64, 64) at 2 mm with +-5 voxel jitter.
#   python tools/train.py configs/sam/uae_m_tiny_synthetic_cpu.py --cfg-options load_from=S1
_base_ = ['./uae_m_intra_tiny_synthetic_cpu.py']
# Random fine negatives (beyond 20 mm, inherited from the stage-1 config) instead of SPEC's
# hard ones (top 2000 -> 500): a CT query starts out less similar to its MR positive than to
# its hardest negatives (fine loss 6.19 > log(201)), so with hard mining the cheapest way down
# for this small model is one constant fine embedding (loss log(201) = 5.30 within 30
# iterations); with random negatives the fine loss falls from 5.25 to about 3.8 in 600
# iterations (README, UAE-M ablation).
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
