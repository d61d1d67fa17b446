# UAE-M stage 2 on registered CT/MR pairs listed in a CSV (columns ct,mr; both volumes on the
# CT grid), as written by each round of tools/uae_m_recipe.py. SAM-tiny on CPU:
# inter-modality crops (48, 64, 64) (z, y, x) at 2 mm with +-5 voxel jitter per border.
#
#   python tools/train.py configs/sam/uae-m-inter_tiny-fpn3d_1xb2-cpu-150it_registered-ct-mr.py \
#       --cfg-options load_from=STAGE1.pth \
#       train_dataloader.dataset.ann_file=work_dirs/uae_m_recipe/round1/pairs.csv
_base_ = ['./uae-m-inter_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct-mr-4mm.py']
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True, type='PairedVolumeDataset', ann_file='', cache=True,
        pipeline=_base_.tiny_inter_pipeline))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=150)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=50,
                                     max_keep_ckpts=1))
