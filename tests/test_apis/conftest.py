"""Makes the analytic stand-in model (position_encoder_standin.py beside this file) importable
by the tests of this folder (pytest runs in importlib mode: test folders are not on sys.path).
"""
import os.path as osp
import sys

HERE = osp.dirname(osp.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
