"""A slowed-down :class:`PositionEncoderStandIn` (``SlowPositionEncoderStandIn``, a sleep per
embedded image) so that a test can kill ``tools/embed.py`` in the middle of a folder."""
import time

from mmanat.registry import MODELS
from tests.helpers.position_encoder_standin import PositionEncoderStandIn


@MODELS.register_module(force=True)
class SlowPositionEncoderStandIn(PositionEncoderStandIn):
    """:class:`PositionEncoderStandIn` that sleeps ``delay_s`` before every embedding."""

    def __init__(self, delay_s: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.delay_s = float(delay_s)

    def extract_feat(self, inputs):
        time.sleep(self.delay_s)
        return super().extract_feat(inputs)
