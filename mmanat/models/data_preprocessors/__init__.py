from .sam_data_preprocessor import SAMDataPreprocessor, pad_views
from .uae_s_data_preprocessor import UAESDataPreprocessor, is_inter_pair

__all__ = ['SAMDataPreprocessor', 'pad_views', 'UAESDataPreprocessor', 'is_inter_pair']
