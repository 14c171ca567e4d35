"""Atomic writes: a file is written beside its final name, then renamed into place.

Every writer of mdx goes through `write_atomic` (bytes or text) or `write_json`, so an interrupted
run leaves the previous complete file or none, never half of one. In a multi-process run only
process 0 writes (`mdx.distributed`); the others' writes are no-ops.
"""
from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Union

from mdx import distributed

PathLike = Union[str, os.PathLike]


def write_atomic(path: PathLike, data: Union[bytes, str]) -> None:
  """Writes `data` to `path` through a temporary file in the same folder and a rename (process 0
  of a multi-process run alone writes)."""
  if not distributed.is_writer():
    return
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f'.{path.name}.tmp-{os.getpid()}')
  if isinstance(data, str):
    data = data.encode()
  tmp.write_bytes(data)
  os.replace(tmp, path)


def write_json(path: PathLike, obj: Any) -> None:
  """`obj` as strict JSON (NaN or inf raise `ValueError`), written atomically."""
  write_atomic(path, json.dumps(obj, indent=1, allow_nan=False) + '\n')
