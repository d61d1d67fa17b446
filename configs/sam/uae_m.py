# UAE-M reference recipe (stage 2), short name: see
# uae-m-inter_r18-fpn3d_1xb1-20k_synthetic-ct-mr.py (stage 1:
# uae-m-intra_r18-fpn3d_1xb2-20k_synthetic-ct-mr.py).
#
#   python tools/train.py configs/sam/uae_m.py --cfg-options load_from=STAGE1.pth
_base_ = ['./uae-m-inter_r18-fpn3d_1xb1-20k_synthetic-ct-mr.py']
