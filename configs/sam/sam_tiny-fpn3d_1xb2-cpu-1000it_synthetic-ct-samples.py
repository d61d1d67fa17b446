# The recipe of the shipped SAM checkpoint (checkpoints/sam_default.pth): SAM-tiny on synthetic
# subjects generated on the fly plus the real sample CTs (lung1, lung2), preprocessed once:
#
#   python tools/fetch_sample_data.py
#   printf 'image,label,modality\nct/lung1.nrrd,ct/lung1_label.nrrd,CT\nct/lung2.nrrd,ct/lung2_label.nrrd,CT\n' > ct.csv
#   python tools/preprocess.py ct.csv --data-root data/samples --out data/ct_cache_samples
#   python tools/train.py configs/sam/sam_tiny-fpn3d_1xb2-cpu-1000it_synthetic-ct-samples.py
#
# The two real volumes are repeated so that about one pair in six comes from a real scan.
_base_ = ['./sam_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct.py']

real_ct = dict(
    type='RepeatDataset',
    times=100,
    dataset=dict(type='VolumeListDataset', data_root='data/ct_cache_samples', ann_file='',
                 modality='CT',
                 pipeline=[dict(type='LoadVolume')] + _base_.two_view_pipeline))
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        ignore_keys=['dataset_type', 'modality'],
        # the synthetic subjects of the base config (each generated once into a disk cache,
        # about 24 MB per subject: up to 24 GB for all 1000 subjects; set cache_dir=None to
        # generate every item on the fly, 2.4x slower), then the real CTs
        datasets=[dict(_base_.train_dataloader.dataset,
                       cache_dir='data/cache/synthetic_subjects'), real_ct]))
# same network, oneDNN-friendly layout, convolutions in bfloat16 on the CPU (over 50
# iterations the fine loss stays at most 0.03 above float32's, docs/en/user_guides/train.md,
# tools/benchmarks/compare_loss_curves.py); cpu_bf16=False for float32 convolutions
model = dict(channels_last=True, cpu_bf16=True)
# one thread in the training process: on cores shared with other jobs, two busy-waiting
# OpenMP threads stall each other; on an idle machine None (one thread per core) is faster
env_cfg = dict(torch_threads=1)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1000)
