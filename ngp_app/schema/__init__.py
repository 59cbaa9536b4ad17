"""One schema per file ngp-app reads, declared once with pydantic (docs/reliability.md, "Input schemas"):

- ``config``: network/training configs (``configs/*.json``, user configs, a snapshot's config);
- ``transforms``: the ``transforms.json`` fields the scene loader uses;
- ``llff``: the rows of LLFF's ``poses_bounds.npy`` (its header is checked by ``data/llff.py``);
- ``snapshot``: the JSON metadata inside ``snapshot.npz``;
- ``cameras``: camera files (``ngp render --camera cam.json``) and keyframe files (``ngp video --path keys.json``);
- ``camera_path``: camera-path files (ours, instant-ngp's, nerfstudio's);
- ``job``: render jobs (``ngp video --job JOB.json``).

``core`` holds the field types, safe JSON reading, and the one-line error format.
"""

from .core import read_json, validate

__all__ = ["read_json", "validate"]
