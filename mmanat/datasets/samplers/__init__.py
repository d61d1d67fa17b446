"""Data samplers (registered in ``DATA_SAMPLERS``)."""
from .mixed_batch_sampler import MixedBatchSampler

__all__ = ['MixedBatchSampler']
