"""Figures: matches in three orthogonal planes."""
from .match_figure import (CT_WINDOWS, choose_ct_window, display_range, orthogonal_planes,
                           plot_match)

__all__ = ['plot_match', 'orthogonal_planes', 'display_range', 'choose_ct_window',
           'CT_WINDOWS']
