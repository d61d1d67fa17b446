# A small UAE-S that trains on CPU in minutes on synthetic subjects generated on the fly:
# SAM-tiny plus a semantic head of the same size (configs/_base_/models/uae_s_tiny.py, 32-d
# embeddings); subjects drawn at 4 mm (fast to generate), intra views (32, 96, 96) and inter
# crops (48, 96, 96) (z, y, x) sampled at 2 mm; 2 intra + 1 inter pair per batch and process.
#
#   python tools/train.py configs/sam/uae-s_tiny-fpn3d_1xb3-cpu-300it_synthetic-ct.py
#   tools/dist_train.sh configs/sam/uae-s_tiny-fpn3d_1xb3-cpu-300it_synthetic-ct.py 2  # gloo
_base_ = [
    '../_base_/models/uae_s_tiny.py',
    '../_base_/datasets/uae_s_synthetic.py',
    '../_base_/datasets/synthetic_landmark_pairs.py',
    '../_base_/schedules/cpu_sgd_300it.py',
]

tiny_subjects = dict(_base_.synthetic_subjects, num_subjects=200, spacing=4.0)
train_dataloader = dict(
    batch_size=3,                 # 2 intra + 1 inter pair
    num_workers=2,
    dataset=dict(
        datasets=[
            dict(tiny_subjects, pipeline=_base_.two_view_pipeline),
            dict(_base_.train_dataloader.dataset.datasets[1], source=tiny_subjects,
                 crop_size=(48, 96, 96)),
        ]))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=20),
]
# the training recipe of the shipped SAM (sam_tiny-fpn3d_1xb2-cpu-1000it_synthetic-ct-samples.py):
# oneDNN-friendly layout, bfloat16 convolutions on the CPU in training only (float32 at
# inference), one training thread; the shipped checkpoint was trained with these settings
model = dict(channels_last=True, cpu_bf16=True)
env_cfg = dict(torch_threads=1)
