"""The interactive point-and-match viewer (``mmanat-viewer``, ``python tools/viewer.py``).

A small Starlette app (:mod:`.app`) serves one :class:`~.session.ViewerSession` - the template
and target images, their embeddings and matchers - to a page that shows the images with
NiiVue (``@niivue/niivue`` from npm, installed and pinned by tools/setup_env.sh under
``mmanat/viewer/frontend``) and matches every click through :class:`mmanat.apis.Matcher`.
User guide: docs/en/user_guides/viewer.md.
"""
from .app import create_app, niivue_installed, serve
from .session import METHODS, NotReadyError, ViewerSession

__all__ = ['ViewerSession', 'NotReadyError', 'METHODS', 'create_app', 'serve',
           'niivue_installed']
