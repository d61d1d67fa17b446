# A small UAE-S for CPU runs and tests: SAM-tiny (sam_tiny.py, 32-d embeddings) plus the
# semantic head of uae_s_semantic_head.py at the same width.
_base_ = ['./sam_tiny.py', './uae_s_semantic_head.py']
model = dict(_base_.uae_s, semantic_head=_base_.model.neck)
