from .sam_data_preprocessor import SAMDataPreprocessor, pad_views

__all__ = ['SAMDataPreprocessor', 'pad_views']
