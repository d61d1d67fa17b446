from .sam_coarse_pair_sampler import SAMCoarsePairSampler
from .sam_fine_pair_sampler import SAMFinePairSampler

__all__ = ['SAMFinePairSampler', 'SAMCoarsePairSampler']
