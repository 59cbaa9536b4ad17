"""Mesh export: marching cubes on analytic fields (watertight, outward, accurate), PLY/OBJ files, coordinates, and
``ngp mesh`` end to end."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from ngp_app.cli import main
from ngp_app.compute import get_ops
from ngp_app.data.cameras import nerf_to_ngp
from ngp_app.errors import NgpError
from ngp_app.export.mesh import (
    Mesh,
    export_mesh,
    extract_surface,
    ngp_to_nerf_directions,
    ngp_to_nerf_points,
    parse_crop,
    sample_density_grid,
    vertex_normals,
)
from ngp_app.export.mesh_io import write_obj, write_ply
from ngp_app.render.occupancy import OccupancyGrid

ROOT = Path(__file__).resolve().parent.parent
CENTRE = np.array([0.52, 0.47, 0.5])


def lattice(resolution: int, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    """(R, R, R, 3) lattice points spanning [lo, hi]^3, indexed [x, y, z]."""
    axis = torch.linspace(lo, hi, resolution, dtype=torch.float64)
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1)


def sphere_field(points: torch.Tensor, centre: np.ndarray, radius: float) -> torch.Tensor:
    """A density that is 10 at the centre and falls linearly outwards, crossing 5 at ``radius``."""
    dist = (points - torch.as_tensor(centre, dtype=points.dtype)).norm(dim=-1)
    return 10.0 * (1.0 - 0.5 * dist / radius)


def edge_counts(faces: np.ndarray) -> np.ndarray:
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    return np.unique(edges, axis=0, return_counts=True)[1]


def euler_characteristic(vertices: np.ndarray, faces: np.ndarray) -> int:
    return len(vertices) - len(edge_counts(faces)) + len(faces)


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    p = vertices[faces].astype(np.float64)
    return np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])


def test_sphere_is_closed_accurate_and_outward() -> None:
    res, radius = 64, 0.3
    v, f = extract_surface(sphere_field(lattice(res), CENTRE, radius), 5.0, [0, 0, 0], [1, 1, 1])
    assert v.dtype == np.float32 and f.dtype == np.int64 and len(f) > 1000
    cell = 1.0 / (res - 1)
    assert np.abs(np.linalg.norm(v - CENTRE, axis=1) - radius).max() < cell
    assert set(edge_counts(f).tolist()) == {2}  # watertight
    assert euler_characteristic(v, f) == 2
    n = face_normals(v, f)
    assert (np.einsum("ij,ij->i", n, v[f].mean(axis=1) - CENTRE) > 0).all()
    area = 0.5 * np.linalg.norm(n, axis=1).sum()
    assert abs(area / (4 * np.pi * radius**2) - 1) < 0.03
    assert (np.linalg.norm(n, axis=1) > 0).all()  # no degenerate faces
    vn = vertex_normals(v, f)
    assert np.allclose(np.linalg.norm(vn, axis=1), 1, atol=1e-5)
    assert (np.einsum("ij,ij->i", vn, v - CENTRE) > 0).all()


def test_two_boxes_and_a_sphere_each_closed() -> None:
    res = 48
    p = lattice(res)
    boxes = [
        (np.array([0.25, 0.3, 0.3]), np.array([0.12, 0.1, 0.15])),
        (np.array([0.7, 0.65, 0.6]), np.array([0.1, 0.2, 0.12])),
    ]
    # Box: 1 inside, falling to 0 one box-size away; the level 0.5 is its faces. Union of shapes = max.
    fields = [1.0 - (p - torch.tensor(c)).abs().div(torch.tensor(h)).amax(dim=-1) * 0.5 for c, h in boxes]
    fields.append(sphere_field(p, np.array([0.3, 0.75, 0.72]), 0.12) / 10.0)
    density = torch.stack(fields).amax(dim=0)
    v, f = extract_surface(density, 0.5, [0, 0, 0], [1, 1, 1])
    assert set(edge_counts(f).tolist()) == {2}
    assert euler_characteristic(v, f) == 2 * 3
    cell = 1.0 / (res - 1)
    for c, h in boxes:  # vertices of each box lie on its surface
        near = np.abs(v - c).max(axis=1) < h.max() + 2 * cell
        d = np.abs(v[near] - c) / h
        assert np.abs(d.max(axis=1) - 1.0).max() * h.min() < cell


def test_degenerate_crossings_on_lattice_points_stay_closed() -> None:
    # Densities exactly at the level on lattice points: vertices snap onto them, degenerate faces are dropped.
    p = lattice(21)
    density = torch.round(sphere_field(p, np.array([0.5, 0.5, 0.5]), 0.3))
    v, f = extract_surface(density, 5.0, [0, 0, 0], [1, 1, 1])
    assert len(f) > 0
    assert (f[:, 0] != f[:, 1]).all() and (f[:, 1] != f[:, 2]).all() and (f[:, 0] != f[:, 2]).all()
    assert len(np.unique(f)) == len(v)
    assert set(edge_counts(f).tolist()) == {2}


def test_empty_and_full_fields_have_no_surface() -> None:
    for value in (0.0, 9.0):
        v, f = extract_surface(torch.full((8, 8, 8), value), 2.5, [0, 0, 0], [1, 1, 1])
        assert v.shape == (0, 3) and f.shape == (0, 3)
    with pytest.raises(NgpError, match="lattice"):
        extract_surface(torch.zeros(4, 5, 4), 1.0, [0, 0, 0], [1, 1, 1])


class SphereModel(nn.Module):
    """An analytic stand-in for NGPField: a sphere's density, rgb = (view direction + 1) / 2."""

    def __init__(self, centre: np.ndarray, radius: float, value: float | None = None) -> None:
        super().__init__()
        self.register_buffer("aabb", torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]))
        self.centre, self.radius, self.value = centre, radius, value
        self.calls = 0

    def density(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.value is not None:
            return torch.full_like(x[:, 0], self.value)
        return sphere_field(x, self.centre, self.radius).float()

    def forward(self, x: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.density(x), (d + 1) / 2


def test_sample_density_grid_spans_box_and_skips_empty_cells() -> None:
    model = SphereModel(CENTRE, 0.3)
    lo, hi = [0.1, 0.2, 0.0], [0.9, 0.8, 1.0]
    seen: list[tuple[int, int]] = []
    d = sample_density_grid(model, None, lo, hi, 9, chunk=100, progress=lambda a, b: seen.append((a, b)))
    assert d.shape == (9, 9, 9) and seen[-1] == (729, 729)
    assert float(d[0, 0, 0]) == pytest.approx(float(sphere_field(torch.tensor([lo]), CENTRE, 0.3)[0]), rel=1e-5)
    assert float(d[-1, 0, -1]) == pytest.approx(
        float(sphere_field(torch.tensor([[0.9, 0.2, 1.0]]), CENTRE, 0.3)[0]), rel=1e-5
    )
    grid = OccupancyGrid(1.0, resolution=16, ops=get_ops("torch"))
    grid.occupied[:] = False
    model.calls = 0
    assert float(sample_density_grid(model, grid, lo, hi, 9).abs().max()) == 0.0 and model.calls == 0
    grid.occupied[0, 0] = True  # one corner cell (x, y, z < 1/16): its neighbours get evaluated, far points not
    d = sample_density_grid(model, grid, [0, 0, 0], [1, 1, 1], 17)
    assert float(d[0, 0, 0]) != 0 and float(d[1, 1, 0]) != 0 and float(d[3, 0, 0]) == 0 and float(d[8, 8, 8]) == 0


def scene_meta(scale: float = 0.33, offset: tuple[float, ...] = (0.5, 0.5, 0.5)) -> dict:
    return {"scale": scale, "offset": list(offset), "aabb_scale": 1}


def test_export_mesh_colours_and_coordinates(tmp_path: Path) -> None:
    model = SphereModel(CENTRE, 0.3)
    snap = SimpleNamespace(nerf=SimpleNamespace(field=model, grid=None), scene=scene_meta(0.5, (0.4, 0.5, 0.6)))
    ngp = export_mesh(
        snap.nerf, snap.scene, tmp_path / "a.ply", resolution=24, threshold=5.0, space="ngp", progress=False
    )
    nerf = export_mesh(snap.nerf, snap.scene, tmp_path / "b.ply", resolution=24, threshold=5.0, progress=False)
    # view direction = -normal, so this model's colour encodes the inward normal
    assert np.abs(ngp.colors / 255.0 - (1 - ngp.normals) / 2).max() < 3 / 255
    assert np.array_equal(ngp.faces, nerf.faces) and np.array_equal(ngp.colors, nerf.colors)
    assert np.allclose(nerf.vertices, ngp_to_nerf_points(ngp.vertices, 0.5, (0.4, 0.5, 0.6)), atol=1e-6)
    assert np.allclose(nerf.normals, ngp_to_nerf_directions(ngp.normals))
    centre = ngp_to_nerf_points(CENTRE[None], 0.5, (0.4, 0.5, 0.6))[0]
    n = face_normals(nerf.vertices, nerf.faces)
    assert (np.einsum("ij,ij->i", n, nerf.vertices[nerf.faces].mean(axis=1) - centre) > 0).all()  # still outward
    cropped = export_mesh(
        snap.nerf,
        snap.scene,
        tmp_path / "c.obj",
        resolution=24,
        threshold=5.0,
        crop=[0, 0, 0, CENTRE[0], 1, 1],
        space="ngp",
        progress=False,
    )
    assert cropped.vertices[:, 0].max() <= CENTRE[0] + 1e-6 and len(cropped.faces) > 0


def test_point_to_nerf_and_back_through_nerf_to_ngp() -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 1, (5, 3))
    scale, offset = 0.27, (0.1, -0.2, 0.45)
    nerf = ngp_to_nerf_points(points, scale, offset)
    for p, q in zip(points, nerf.astype(np.float64)):
        m = np.eye(4)
        m[:3, 3] = q
        assert np.allclose(nerf_to_ngp(m, scale, offset)[:, 3], p, atol=1e-6)
    d = rng.normal(size=(5, 3))
    for p, q in zip(d, ngp_to_nerf_directions(d)):  # directions: the rotation part of the same transform
        m = np.eye(4)
        m[:3, 0] = q
        assert np.allclose(nerf_to_ngp(m, scale, offset)[:, 0], p)


def test_missing_scene_transform_falls_back_to_ngp(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    snap = SimpleNamespace(nerf=SimpleNamespace(field=SphereModel(CENTRE, 0.3), grid=None), scene={})
    with caplog.at_level(logging.WARNING, logger="ngp_app"):
        mesh = export_mesh(snap.nerf, snap.scene, tmp_path / "m.ply", resolution=16, threshold=5.0, progress=False)
    assert "ngp coordinates" in caplog.text
    assert np.abs(np.linalg.norm(mesh.vertices - CENTRE, axis=1) - 0.3).max() < 1 / 15


def test_empty_field_is_a_clear_error(tmp_path: Path) -> None:
    snap = SimpleNamespace(
        nerf=SimpleNamespace(field=SphereModel(CENTRE, 0.3, value=0.8), grid=None), scene=scene_meta()
    )
    with pytest.raises(
        NgpError, match=r"no surface at density 2.5 \(densities in this box range 0.8 .. 0.8\); try a lower --threshold"
    ):
        export_mesh(snap.nerf, snap.scene, tmp_path / "m.ply", resolution=8, progress=False)
    assert not (tmp_path / "m.ply").exists()
    with pytest.raises(NgpError, match="unknown mesh format"):
        export_mesh(snap.nerf, snap.scene, tmp_path / "m.stl", resolution=8, progress=False)
    with pytest.raises(NgpError, match="does not overlap"):
        export_mesh(snap.nerf, snap.scene, tmp_path / "m.ply", resolution=8, crop=[2, 2, 2, 3, 3, 3], progress=False)


def read_ply(path: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A minimal parser of our binary PLY: vertex record fields and (F, 3) faces."""
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    assert header[:2] == ["ply", "format binary_little_endian 1.0"]
    n_v = int(next(h for h in header if h.startswith("element vertex")).split()[-1])
    n_f = int(next(h for h in header if h.startswith("element face")).split()[-1])
    props = [h.split()[-1] for h in header if h.startswith("property") and "list" not in h]
    assert props == ["x", "y", "z", "nx", "ny", "nz", "red", "green", "blue"]
    assert "property list uchar int vertex_indices" in header
    vtype = np.dtype([(p, "<f4") for p in props[:6]] + [(p, "u1") for p in props[6:]])
    verts = np.frombuffer(data, vtype, n_v, end)
    faces = np.frombuffer(data, np.dtype([("k", "u1"), ("i", "<i4", 3)]), n_f, end + n_v * vtype.itemsize)
    assert (faces["k"] == 3).all() and end + n_v * vtype.itemsize + n_f * 13 == len(data)
    return {p: verts[p] for p in props}, faces["i"].astype(np.int64)


def small_mesh() -> Mesh:
    v, f = extract_surface(sphere_field(lattice(12), CENTRE, 0.3), 5.0, [0, 0, 0], [1, 1, 1])
    n = vertex_normals(v, f)
    colors = (np.arange(len(v) * 3) % 256).astype(np.uint8).reshape(-1, 3)
    return Mesh(v, f, colors, n)


def test_ply_round_trip(tmp_path: Path) -> None:
    mesh = small_mesh()
    write_ply(tmp_path / "m.ply", mesh)
    verts, faces = read_ply(tmp_path / "m.ply")
    assert np.array_equal(np.stack([verts["x"], verts["y"], verts["z"]], 1), mesh.vertices)
    assert np.array_equal(np.stack([verts["nx"], verts["ny"], verts["nz"]], 1), mesh.normals)
    assert np.array_equal(np.stack([verts["red"], verts["green"], verts["blue"]], 1), mesh.colors)
    assert np.array_equal(faces, mesh.faces)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_obj_lines(tmp_path: Path) -> None:
    mesh = small_mesh()
    lines = write_obj(tmp_path / "m.obj", mesh).read_text().splitlines()
    kinds = [line.split()[0] for line in lines if line and not line.startswith("#")]
    assert kinds.count("v") == mesh.n_vertices and kinds.count("vn") == mesh.n_vertices
    assert kinds.count("f") == mesh.n_faces and len(kinds) == 2 * mesh.n_vertices + mesh.n_faces
    v = np.array([line.split()[1:] for line in lines if line.startswith("v ")], dtype=np.float64)
    assert np.allclose(v[:, :3], mesh.vertices, atol=1e-5) and np.allclose(v[:, 3:] * 255, mesh.colors, atol=0.05)
    f = [line.split()[1:] for line in lines if line.startswith("f ")]
    assert f[0] == [f"{i + 1}//{i + 1}" for i in mesh.faces[0]]


def test_parse_crop() -> None:
    assert parse_crop("0,0.1,0.2,1,1.1,1.2") == ([0.0, 0.1, 0.2], [1.0, 1.1, 1.2])
    for bad in ("1,2,3", "a,b,c,d,e,f", "0,0,0,1,1,0", "0,0,0,1,1,nan"):
        with pytest.raises(NgpError, match="--crop"):
            parse_crop(bad)


@pytest.fixture(scope="module")
def tiny_snapshot(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A snapshot trained for a few steps on the demo scene, and a threshold that crosses its density."""
    from ngp_app.config import load_config
    from ngp_app.data.loaders import load_scene
    from ngp_app.snapshot import load_snapshot, save_snapshot
    from ngp_app.train.trainer import Trainer
    from tests.conftest import DEMO

    torch.set_num_threads(2)
    scene = load_scene(DEMO, "train", downscale=8)
    trainer = Trainer(
        scene, load_config("small", {"training": {"target_batch_size_cpu": 4096}}), backend="torch", seed=0
    )
    trainer.train(steps=10)
    path = save_snapshot(
        tmp_path_factory.mktemp("mesh") / "snapshot.npz",
        trainer.nerf,
        trainer.config,
        scene.metadata(),
        trainer.step_count,
    )
    snap = load_snapshot(path)
    d = sample_density_grid(snap.nerf.field, snap.nerf.grid, snap.nerf.aabb[0], snap.nerf.aabb[1], 20)
    live = d[d > 0]  # cells the occupancy grid skips read 0; a surface must cross the densities of the others
    return path, 0.5 * float(live.min() + live.max())


def test_cli_mesh_end_to_end(tmp_path: Path, tiny_snapshot: tuple[Path, float]) -> None:
    path, threshold = tiny_snapshot
    out = tmp_path / "mesh.ply"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "ngp_app",
            "--threads",
            "2",
            "mesh",
            str(path),
            "--out",
            str(out),
            "--resolution",
            "20",
            "--threshold",
            f"{threshold:.6g}",
            "--quiet",
            "--device",
            "cpu",
            "--backend",
            "torch",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == str(out) and "vertices" in res.stdout.splitlines()[1]
    verts, faces = read_ply(out)
    assert len(verts["x"]) > 0 and len(faces) > 0


@pytest.mark.parametrize(
    "args,needle",
    [
        (["mesh", "{snap}", "--out", "{tmp}/m.stl"], "unknown mesh format"),
        (["mesh", "{snap}", "--out", "{tmp}/m.ply", "--crop", "0,0,0,1,1"], "--crop"),
        (["mesh", "{tmp}/missing.npz", "--out", "{tmp}/m.ply"], "snapshot not found"),
        (["mesh", "{tmp}/garbage.npz", "--out", "{tmp}/m.obj"], "snapshot"),
        (
            ["mesh", "{snap}", "--out", "{tmp}/m.ply", "--threshold", "1e9", "--resolution", "8", "--backend", "torch"],
            "no surface at density 1e+09",
        ),
        (["mesh", "{snap}", "--out", "{tmp}/m.ply", "--resolution", "5000"], "must be in 2..1024"),
        (
            ["mesh", "{snap}", "--out", "{tmp}/garbage.npz/m.ply", "--resolution", "8", "--threshold", "0.01"],
            "garbage.npz",
        ),  # a file where a folder should be: one line naming it
    ],
)
def test_cli_mesh_errors_are_one_line(
    tmp_path: Path, tiny_snapshot: tuple[Path, float], capsys: pytest.CaptureFixture, args: list[str], needle: str
) -> None:
    (tmp_path / "garbage.npz").write_bytes(b"garbage")
    code = main([a.format(tmp=tmp_path, snap=tiny_snapshot[0]) for a in args] + ["--quiet", "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1 and err[0].startswith("ngp: error:") and needle in err[0], err
    assert not (tmp_path / "m.ply").exists()
