# UAE-M stage 2 (Bai et al., UAE, arXiv:2311.15111): inter-modality training on aligned CT/MR
# pairs (the synthetic generator renders each subject as an aligned pair; real pairs are
# aligned first with tools/register.py and the stage-1 model). The SAM fine/coarse samplers and
# InfoNCE losses on (CT view, MR view) give the symmetric inter-modality loss. Start from
# stage 1 (short name: configs/sam/uae_m.py):
#
#   python tools/train.py configs/sam/uae_m.py --cfg-options load_from=STAGE1.pth
#
# The fine hard negatives are SAM's (top 2000 -> 500). If the fine loss settles at
# log(num_negatives + 1) (one constant embedding, as with the small CPU models), use random
# negatives: --cfg-options model.fine_sampler.num_hard_candidates=None
#
# The data steps are the released ones (configs/_base_/datasets/uae_m_synthetic.py,
# uae_m_inter_released_pipeline): per-view spacing scale and rotation, the window inside the MR
# body, histogram shift inside each view's body mask, blur; the MR-foreground query mask travels
# as data_samples['query_mask'] to the fine pair sampler. The earlier plain crop (box
# anywhere in the volume, no scale, rotation or masks) is _base_.uae_m_inter_dataset as it is
# (its pipeline: uae_m_inter_pipeline).
_base_ = ['./uae-m-intra_r18-fpn3d_1xb2-20k_synthetic-ct-mr.py']
train_dataloader = dict(
    batch_size=1,
    dataset=dict(_base_.uae_m_inter_dataset, pipeline=_base_.uae_m_inter_released_pipeline))
