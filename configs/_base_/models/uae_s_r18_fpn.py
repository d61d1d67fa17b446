# UAE-S network: the SAM reference network (sam_r18_fpn.py) plus the semantic head of
# uae_s_semantic_head.py (128-d, the fine neck's FPN config with its own weights).
_base_ = ['./sam_r18_fpn.py', './uae_s_semantic_head.py']
model = dict(_base_.uae_s, semantic_head=_base_.model.neck)
