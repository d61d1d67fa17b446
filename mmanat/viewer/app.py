"""The viewer's web server: a small Starlette (ASGI) app served by uvicorn.

Safe by default:

* it binds to 127.0.0.1 unless told otherwise, and answers only requests whose ``Host`` is the
  address it serves (no DNS rebinding);
* it serves only the images it was started with (by number: ``/api/volume/0.nii``), their
  latest similarity overlays, and a fixed list of page files; no request parameter is ever
  used as a path;
* request bodies are JSON only (a cross-site form cannot post one without a CORS pre-flight,
  which the server does not grant) and limited in size (``max_body_bytes``, 413 beyond);
* every failure comes back as ``{"error": "..."}`` with the message of the
  :class:`~mmanat.utils.exceptions.InvalidInputError` (400), 503 while the embeddings are
  not ready, 500 otherwise; the page shows it.
"""
from __future__ import annotations

import json
import os.path as osp
import socket
import threading
import traceback
from typing import Any, Callable, Dict, Optional, Sequence

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from ..utils.exceptions import InvalidInputError
from .points import export_points, parse_points, to_pointset
from .session import NotReadyError, ViewerSession

HERE = osp.dirname(osp.abspath(__file__))
STATIC_DIR = osp.join(HERE, 'static')
FRONTEND_DIR = osp.join(HERE, 'frontend')
#: the NiiVue build the page imports (installed by tools/setup_env.sh with npm ci)
NIIVUE_JS = osp.join(FRONTEND_DIR, 'node_modules', '@niivue', 'niivue', 'dist', 'index.js')
#: the only files served under /static/ (name -> (path, media type))
STATIC_FILES = {
    'viewer.js': (osp.join(STATIC_DIR, 'viewer.js'), 'text/javascript'),
    'viewer_ui.js': (osp.join(STATIC_DIR, 'viewer_ui.js'), 'text/javascript'),
    'viewer.css': (osp.join(STATIC_DIR, 'viewer.css'), 'text/css'),
    'niivue.js': (NIIVUE_JS, 'text/javascript'),
}
#: default limit of a request body (a point file of thousands of points fits)
MAX_BODY_BYTES = 4 * 2**20
_SECURITY_HEADERS = {
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Content-Security-Policy': (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self' data: blob:; worker-src 'self' blob:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
}


def niivue_installed() -> bool:
    """True when the NiiVue build the page needs is installed (``npm ci`` of
    mmanat/viewer/frontend, done by tools/setup_env.sh)."""
    return osp.isfile(NIIVUE_JS)


class PayloadTooLarge(InvalidInputError):
    """A request body over the limit."""


def _error(err: BaseException) -> JSONResponse:
    if isinstance(err, PayloadTooLarge):
        code = 413
    elif isinstance(err, NotReadyError):
        code = 503
    elif isinstance(err, InvalidInputError):
        code = 400
    else:
        traceback.print_exc()
        return JSONResponse({'error': f'internal error ({type(err).__name__}: {err}); see the '
                             'terminal running the viewer.'}, status_code=500,
                            headers=_SECURITY_HEADERS)
    return JSONResponse({'error': str(err)}, status_code=code, headers=_SECURITY_HEADERS)


async def read_json(request: Request, limit: int) -> Dict[str, Any]:
    """The JSON object of a request body of at most ``limit`` bytes.

    Raises:
        PayloadTooLarge: a larger body (declared or sent).
        InvalidInputError: not ``application/json``, not a JSON object.
    """
    ctype = request.headers.get('content-type', '').split(';')[0].strip().lower()
    if ctype != 'application/json':
        raise InvalidInputError('requests must be JSON (Content-Type: application/json).')
    declared = request.headers.get('content-length')
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f'request of {int(declared)} bytes is over the limit of {limit} '
                              'bytes (a point file that large? split it).')
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f'request over the limit of {limit} bytes.')
    try:
        obj = json.loads(body.decode('utf-8') or 'null')
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InvalidInputError(f'the request is not valid JSON ({err}).') from None
    if not isinstance(obj, dict):
        raise InvalidInputError('the request must be a JSON object.')
    return obj


def _space(obj: Dict[str, Any]) -> str:
    space = str(obj.get('space') or 'LPS').upper()
    if space not in ('LPS', 'RAS'):
        raise InvalidInputError(f'space {space!r}: use LPS or RAS.')
    return space


def create_app(session: ViewerSession, max_body_bytes: int = MAX_BODY_BYTES,
               allowed_hosts: Optional[Sequence[str]] = None) -> Starlette:
    """The ASGI app of one viewer session.

    Args:
        session: the images and matchers (its embeddings may still be running).
        max_body_bytes: the largest request body accepted.
        allowed_hosts: ``Host`` header values accepted (default: 127.0.0.1, localhost,
            ::1; add the bound address when serving elsewhere).

    Returns:
        Starlette: the app (serve it with uvicorn, or :func:`serve`).
    """
    ndim = 2 if session.planar else 3

    def handler(func: Callable) -> Callable:
        async def endpoint(request: Request) -> Response:
            try:
                result = await func(request)
            except Exception as err:  # noqa: BLE001 - every failure becomes a JSON error
                return _error(err)
            if isinstance(result, Response):
                return result
            return JSONResponse(result, headers=_SECURITY_HEADERS)
        return endpoint

    async def index(request: Request):
        return FileResponse(osp.join(STATIC_DIR, 'index.html'), media_type='text/html',
                            headers=_SECURITY_HEADERS)

    async def static(request: Request):
        entry = STATIC_FILES.get(request.path_params['name'])
        if entry is None or not osp.isfile(entry[0]):
            missing = entry is not None and entry[0] == NIIVUE_JS
            return JSONResponse({'error': 'NiiVue is not installed: run `bash tools/setup_env.sh`'
                                 ' (npm ci in mmanat/viewer/frontend).' if missing else
                                 'not found'}, status_code=404, headers=_SECURITY_HEADERS)
        return FileResponse(entry[0], media_type=entry[1], headers=_SECURITY_HEADERS)

    async def favicon(request: Request):
        return Response(status_code=204)

    async def info(request: Request):
        return await run_in_threadpool(session.info)

    async def status(request: Request):
        return dict(session.status)

    async def volume(request: Request):
        i = request.path_params['index']
        if not 0 <= i < len(session.images):
            raise InvalidInputError(f'image {i}: no such image.')
        data = await run_in_threadpool(session.images[i].nifti)
        return Response(data, media_type='application/octet-stream', headers=_SECURITY_HEADERS)

    async def overlay(request: Request):
        data = session.overlay_bytes(request.path_params['target'], request.path_params['seq'])
        return Response(data, media_type='application/octet-stream', headers=_SECURITY_HEADERS)

    async def match(request: Request):
        obj = await read_json(request, max_body_bytes)
        points = obj.get('points')
        if not isinstance(points, list) or not points:
            raise InvalidInputError('"points" must be a non-empty list of world LPS points.')
        if len(points) > 5000:
            raise InvalidInputError(f'{len(points)} points in one request; at most 5000.')
        try:
            pts = [[float(v) for v in p] for p in points]
        except (TypeError, ValueError):
            raise InvalidInputError('"points" must hold lists of numbers (world LPS mm).') \
                from None
        return await run_in_threadpool(session.match, pts, obj.get('method'),
                                       bool(obj.get('overlay')))

    async def points_parse(request: Request):
        obj = await read_json(request, max_body_bytes)
        rows = await run_in_threadpool(parse_points, str(obj.get('filename') or ''),
                                       str(obj.get('text') or ''), _space(obj), ndim)
        session.check_inside(to_pointset(rows, ndim), str(obj.get('filename') or ''))
        return dict(points=rows)

    async def points_export(request: Request):
        obj = await read_json(request, max_body_bytes)
        ps = to_pointset(obj.get('points') or [], ndim)
        stem = osp.splitext(session.template.name)[0] + '_points'
        return export_points(ps, str(obj.get('format') or 'mrk.json'),
                             'LPS' if ndim == 2 else _space(obj), stem)

    async def matches_export(request: Request):
        obj = await read_json(request, max_body_bytes)
        ps = to_pointset(obj.get('points') or [], ndim)
        if len(ps) == 0:
            raise InvalidInputError('no points to export; click the template first.')
        try:
            t = int(obj.get('target') or 1)
        except (TypeError, ValueError):
            raise InvalidInputError(f'target {obj.get("target")!r}: give a target number.') \
                from None
        res = await run_in_threadpool(session.match, ps.xyz, obj.get('method'), False, [t])
        found = res['targets'][0]
        xyz = [p[:ndim] for p in found['points']]
        from ..structures import PointSet
        out = PointSet(xyz, names=ps.names, extra=dict(score=found['scores']))
        stem = osp.splitext(session.images[t].name)[0] + '_matches'
        return export_points(out, str(obj.get('format') or 'csv'),
                             'LPS' if ndim == 2 else _space(obj), stem)

    routes = [
        Route('/', index),
        Route('/favicon.ico', favicon),
        Route('/static/{name}', handler(static)),
        Route('/api/info', handler(info)),
        Route('/api/status', handler(status)),
        Route('/api/volume/{index:int}.nii', handler(volume)),
        Route('/api/overlay/{target:int}/{seq:int}.nii', handler(overlay)),
        Route('/api/match', handler(match), methods=['POST']),
        Route('/api/points/parse', handler(points_parse), methods=['POST']),
        Route('/api/points/export', handler(points_export), methods=['POST']),
        Route('/api/matches/export', handler(matches_export), methods=['POST']),
    ]
    hosts = list(allowed_hosts or []) + ['127.0.0.1', 'localhost', '::1', '[::1]']
    return Starlette(routes=routes,
                     middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)])


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free port)."""
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise InvalidInputError(f'cannot listen on {host}:{port} ({err.strerror}); pick another '
                                '--port (0: any free port).') from None
    sock.listen(64)
    return sock


def serve(session: ViewerSession, host: str = '127.0.0.1', port: int = 8765,
          open_browser: bool = True, log: Callable[[str], None] = print,
          max_body_bytes: int = MAX_BODY_BYTES) -> None:
    """Serve the viewer until Ctrl-C.

    Args:
        session: the viewer session (start its embeddings first with ``session.start()``).
        host: address to bind (default 127.0.0.1: this machine only).
        port: TCP port (0: any free port); the URL is printed as ``serving on URL``.
        open_browser: open the page in the default browser.
        log: where messages go.
        max_body_bytes: the largest request body accepted.
    """
    import uvicorn
    sock = bind_socket(host, port)
    real_port = sock.getsockname()[1]
    shown = f'[{host}]' if ':' in host else host
    url = f'http://{shown}:{real_port}/'
    app = create_app(session, max_body_bytes, allowed_hosts=[host, f'{shown}'])
    config = uvicorn.Config(app, log_level='warning', access_log=False,
                            limit_concurrency=64, timeout_keep_alive=30)
    server = uvicorn.Server(config)
    log(f'[viewer] serving on {url} (Ctrl-C to stop)')
    if open_browser:
        import webbrowser
        threading.Timer(1.0, webbrowser.open, [url]).start()
    server.run(sockets=[sock])
