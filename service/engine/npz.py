"""Numpy arrays written as a `.npz` file that has the same bytes whenever the arrays are the same.

`np.savez` stamps each member with the current time, so two runs on the same data differ; the model
artifact and the 归属地 prefix file are hash-checked and rebuilt by `make train` and
`python -m service.engine.numbers.phone_facts`, so they are written here with fixed stamps.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def write_npz(path: Path, arrays: Mapping[str, np.ndarray], *, compress: bool) -> None:
    """Write `arrays` (no pickles) to `path`, deflated when `compress`, creating its folder."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as zf:
        for name, array in arrays.items():
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = method
            info.external_attr = 0o644 << 16
            zf.writestr(info, npy.getvalue())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
