# A tiny UAE-M stage 2 for CPU: aligned synthetic CT/MR pairs at 4 mm, inter-modality crops
# (48, 64, 64) (z, y, x) at 2 mm with +-5 voxel jitter.
#   python tools/train.py configs/sam/uae-m-inter_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct-mr-4mm.py \
#       --cfg-options load_from=STAGE1.pth
_base_ = ['./uae-m-intra_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct-mr-4mm.py']
# Random fine negatives (beyond 20 mm, inherited from stage 1) instead of SAM's hard ones: a CT
# query starts out less similar to its MR positive than to its hardest negatives, and hard
# mining collapses this small model to one constant fine embedding.
tiny_inter_pipeline = [
    dict(_base_.uae_m_inter_pipeline[0], patch_size=(48, 64, 64), jitter=5),
    *_base_.uae_m_inter_pipeline[1:],
]
train_dataloader = dict(
    batch_size=2,
    dataset=dict(_base_.uae_m_inter_dataset, _delete_=True, num_subjects=200, spacing=4.0,
                 pipeline=tiny_inter_pipeline))
