# A tiny UAE-M stage 1 for CPU: SAM-tiny, subjects at 4 mm, views (32, 96, 96) (z, y, x) at 2 mm.
#   python tools/train.py configs/sam/uae-m-intra_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct-mr-4mm.py
_base_ = [
    '../_base_/models/sam_tiny.py',
    '../_base_/datasets/uae_m_synthetic.py',
    '../_base_/datasets/synthetic_landmark_pairs.py',
    '../_base_/schedules/cpu_sgd_300it.py',
]
# Random fine negatives beyond 20 mm instead of SAM's hard ones: with hard negatives and the
# contrast augmentation this small model's fine level collapses to one constant embedding
# (fine loss at log(201)).
model = dict(fine_sampler=dict(num_hard_candidates=None), channels_last=True, cpu_bf16=True)
train_dataloader = dict(batch_size=2, num_workers=2,
                        dataset=dict(num_subjects=200, spacing=4.0))
# the training recipe of the shipped SAM (sam_tiny-fpn3d_1xb2-cpu-1000it_synthetic-ct-samples.py):
# oneDNN-friendly layout, bfloat16 convolutions on the CPU in training only (float32 at
# inference; set in `model` above), one training thread; the shipped checkpoint was trained
# with these settings
env_cfg = dict(torch_threads=1)
