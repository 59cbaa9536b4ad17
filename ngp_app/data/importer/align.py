"""How well recovered poses match known ones: Umeyama's similarity alignment, then camera-centre and rotation
errors. Used by the import tests and the fox benchmark (docs/benchmarks.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The similarity (scale, rotation (3, 3), translation (3,)) minimising sum |dst - (s R src + t)|^2
    (Umeyama 1991, reflections excluded). src, dst: (n, 3), n >= 3 points not all on a line."""
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1.0
    rot = u @ sign @ vt
    var_s = (xs * xs).sum() / len(src)
    scale = float(np.trace(np.diag(sig) @ sign) / var_s) if var_s > 0 else 1.0
    return scale, rot, mu_d - scale * rot @ mu_s


@dataclass(frozen=True)
class PoseErrors:
    """Errors of recovered poses after a similarity alignment onto the reference ones (per camera arrays)."""

    centre_error: np.ndarray  # (n,) distance of each aligned centre from its reference, in % of `spread`
    rotation_error: np.ndarray  # (n,) angle between aligned and reference rotations, degrees
    spread: float  # RMS distance of the reference centres from their mean (reference units)
    scale: float  # the alignment's scale

    @property
    def centre_median(self) -> float:
        return float(np.median(self.centre_error))

    @property
    def rotation_median(self) -> float:
        return float(np.median(self.rotation_error))


def pose_errors(estimated: np.ndarray, reference: np.ndarray) -> PoseErrors:
    """Align ``estimated`` camera-to-world matrices (n, 4|3, 4) onto ``reference`` ones (same cameras, same
    order, same camera convention) by the similarity of their centres, and measure what is left."""
    est, ref = np.asarray(estimated, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    scale, rot, trans = umeyama(est[:, :3, 3], ref[:, :3, 3])
    aligned = scale * est[:, :3, 3] @ rot.T + trans
    centres = ref[:, :3, 3]
    spread = float(np.sqrt(((centres - centres.mean(axis=0)) ** 2).sum(axis=1).mean()))
    err = np.linalg.norm(aligned - centres, axis=1) / max(spread, 1e-12) * 100.0
    rel = np.einsum("nji,jk,nkl->nil", ref[:, :3, :3], rot, est[:, :3, :3])  # R_ref^T R R_est
    # |rel - I|_F = 2 sqrt(2) sin(angle / 2): precise for tiny angles, unlike arccos of the trace
    chord = np.linalg.norm(rel - np.eye(3), axis=(1, 2)) / (2.0 * np.sqrt(2.0))
    return PoseErrors(err, np.degrees(2.0 * np.arcsin(np.clip(chord, 0.0, 1.0))), spread, scale)
