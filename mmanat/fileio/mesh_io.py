"""Vertices of surface meshes: read them, and write the same mesh with moved vertices.

Formats (text only; the rest of the file, faces and other attributes, is copied unchanged):

* Wavefront ``.obj``: the ``v x y z`` lines;
* ASCII ``.ply``: the first three properties (x, y, z) of the ``vertex`` element;
* legacy ASCII VTK ``.vtk`` (POLYDATA / UNSTRUCTURED_GRID / ...): the ``POINTS n type``
  block.

Coordinates are world mm in ``space`` (``'LPS'``, the mmanat convention, or ``'RAS'``: 3D
Slicer's older model files and many other tools); in memory they are LPS.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import List, Tuple

import numpy as np

from ..utils.exceptions import InvalidInputError
from .atomic import atomic_path

__all__ = ['MESH_EXTENSIONS', 'is_mesh_file', 'read_mesh_vertices', 'write_mesh_vertices']

MESH_EXTENSIONS = ('.obj', '.ply', '.vtk')
_FLIP = np.array([-1.0, -1.0, 1.0])


def is_mesh_file(path) -> bool:
    """True if ``path`` names a mesh by its extension (:data:`MESH_EXTENSIONS`)."""
    return os.fspath(path).lower().endswith(MESH_EXTENSIONS)


def _check_space(space: str) -> None:
    if space not in ('LPS', 'RAS'):
        raise InvalidInputError(f"space must be 'LPS' or 'RAS', got {space!r}.")


def _lines(path: str) -> List[str]:
    if not osp.isfile(path):
        raise InvalidInputError(f'{path}: mesh file not found (working directory '
                                f'{os.getcwd()}); check the path.')
    try:
        with open(path, 'r', encoding='utf-8') as fh:
            return fh.read().splitlines()
    except UnicodeDecodeError:
        raise InvalidInputError(f'{path}: not a text file; mmanat reads ASCII meshes only '
                                '(.obj, ASCII .ply, legacy ASCII .vtk); save it as ASCII, '
                                'e.g. with meshio or 3D Slicer.') from None


def _obj_slots(lines: List[str]) -> List[Tuple[int, int]]:
    return [(i, 0) for i, ln in enumerate(lines) if ln.startswith('v ')]


def _ply_slots(lines: List[str], path: str) -> List[Tuple[int, int]]:
    if not lines or lines[0].strip() != 'ply':
        raise InvalidInputError(f'{path}: not a PLY file (no "ply" first line).')
    n_vertex, end, fmt, before = None, None, None, 0
    element = None
    for i, ln in enumerate(lines):
        parts = ln.split()
        if not parts:
            continue
        if parts[0] == 'format':
            fmt = parts[1] if len(parts) > 1 else None
        elif parts[0] == 'element':
            element = parts[1]
            if element == 'vertex':
                n_vertex = int(parts[2])
            elif n_vertex is None:
                before += int(parts[2])
        elif parts[0] == 'end_header':
            end = i
            break
    if fmt != 'ascii':
        raise InvalidInputError(f'{path}: PLY format {fmt!r}; mmanat reads ASCII PLY only; '
                                'save the mesh as ASCII PLY (or .obj).')
    if n_vertex is None or end is None:
        raise InvalidInputError(f'{path}: PLY header without a vertex element or end_header.')
    start = end + 1 + before
    if start + n_vertex > len(lines):
        raise InvalidInputError(f'{path}: PLY declares {n_vertex} vertices but the file ends '
                                'early; the file is truncated.')
    return [(start + k, 0) for k in range(n_vertex)]


def _vtk_points(lines: List[str], path: str):
    head = next((i for i, ln in enumerate(lines) if ln.upper().startswith('POINTS')), None)
    if len(lines) < 3 or 'ASCII' not in lines[2].upper():
        raise InvalidInputError(f'{path}: not a legacy ASCII VTK file (third line must be '
                                '"ASCII"); save the mesh as ASCII.')
    if head is None:
        raise InvalidInputError(f'{path}: no POINTS block in the VTK file.')
    n = int(lines[head].split()[1])
    values, i = [], head + 1
    while len(values) < 3 * n and i < len(lines):
        values.extend(lines[i].split())
        i += 1
    if len(values) < 3 * n:
        raise InvalidInputError(f'{path}: VTK POINTS declares {n} points but the file ends '
                                'early; the file is truncated.')
    return head, i, np.asarray(values[:3 * n], dtype=np.float64).reshape(n, 3)


def _ext(path: str) -> str:
    low = path.lower()
    ext = next((e for e in MESH_EXTENSIONS if low.endswith(e)), None)
    if ext is None:
        raise InvalidInputError(f'{path}: unknown mesh extension; use one of '
                                f'{", ".join(MESH_EXTENSIONS)}.')
    return ext


def read_mesh_vertices(path, space: str = 'LPS') -> np.ndarray:
    """The vertices ``(N, 3)`` (world LPS mm) of an ASCII mesh file (see module docstring).

    Raises:
        InvalidInputError: a missing, binary or truncated file, an unknown extension, no
            vertex.
    """
    _check_space(space)
    path = os.fspath(path)
    ext = _ext(path)
    lines = _lines(path)
    if ext == '.vtk':
        xyz = _vtk_points(lines, path)[2]
    else:
        slots = _obj_slots(lines) if ext == '.obj' else _ply_slots(lines, path)
        try:
            xyz = np.array([[float(v) for v in lines[i].split()[1 if ext == '.obj' else 0:][:3]]
                            for i, _ in slots], dtype=np.float64).reshape(-1, 3)
        except ValueError as err:
            raise InvalidInputError(f'{path}: a vertex line is not three numbers ({err}).'
                                    ) from None
    if len(xyz) == 0:
        raise InvalidInputError(f'{path}: the mesh has no vertex.')
    return xyz * _FLIP if space == 'RAS' else xyz


def write_mesh_vertices(template_path, vertices, out_path, space: str = 'LPS') -> str:
    """Write the mesh of ``template_path`` with its vertices replaced by ``vertices`` (world
    LPS mm, written in ``space``) to ``out_path`` (same format), atomically.

    Returns:
        the absolute path written.

    Raises:
        InvalidInputError: another vertex count than the template's, other extensions.
    """
    _check_space(space)
    template_path, out_path = os.fspath(template_path), os.fspath(out_path)
    ext = _ext(template_path)
    if _ext(out_path) != ext:
        raise InvalidInputError(f'{out_path}: write the mesh in the format of its source '
                                f'({ext}).')
    lines = _lines(template_path)
    xyz = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    xyz = xyz * _FLIP if space == 'RAS' else xyz
    n_have = len(read_mesh_vertices(template_path))
    if len(xyz) != n_have:
        raise InvalidInputError(f'{template_path}: has {n_have} vertices, got {len(xyz)} new '
                                'positions.')
    if ext == '.vtk':
        head, stop, _ = _vtk_points(lines, template_path)
        block = [' '.join(f'{v:.6f}' for v in p) for p in xyz]
        lines = lines[:head] + [f'POINTS {len(xyz)} double'] + block + lines[stop:]
    else:
        slots = _obj_slots(lines) if ext == '.obj' else _ply_slots(lines, template_path)
        for (i, _), p in zip(slots, xyz):
            parts = lines[i].split()
            lead = parts[:1] if ext == '.obj' else []
            rest = parts[4:] if ext == '.obj' else parts[3:]
            lines[i] = ' '.join(lead + [f'{v:.6f}' for v in p] + rest)
    out_path = osp.abspath(out_path)
    with atomic_path(out_path) as tmp, open(tmp, 'w', encoding='utf-8') as fh:
        fh.write('\n'.join(lines) + '\n')
    return out_path
