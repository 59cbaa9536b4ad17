"""Every custom op of the native extension passes ``torch.library.opcheck``'s full default set on the CPU (its schema's
alias annotations say what it mutates and that no output aliases an input; its fake kernel, ``native/fake.py``, gives
the real outputs' metadata; it traces through AOT autograd with dynamic shapes), called with the arguments the
package's own wrappers pass it in a training step, a frame render, packed marching and the SH backward."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from native_support import require_native
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.symbolic_shapes import ShapeEnv

require_native()

from ngp_app.native import ops as native_ops  # noqa: E402

# opcheck's full default set: the schema, autograd registration, the fake kernels (ngp_app/native/fake.py) against
# the real outputs, and tracing through AOT autograd with dynamic shapes.
CHECKS = ("test_schema", "test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")


class Recorder:
    """``torch.ops.ngp`` with each op's calls recorded (arguments cloned before the call: some ops mutate them),
    the first call per distinct pattern of None arguments (``hash_grid_bwd`` with and without ``accumulate``)."""

    def __init__(self) -> None:
        self.calls: dict[str, dict[tuple[bool, ...], tuple[Any, ...]]] = {}

    def __getattr__(self, name: str) -> Callable[..., Any]:
        op = getattr(torch.ops.ngp, name)

        def call(*args: Any) -> Any:
            key = tuple(a is None for a in args)
            self.calls.setdefault(name, {}).setdefault(key, tuple(_clone(a) for a in args))
            return op(*args)

        return call


def _clone(a: Any) -> Any:
    return a.clone() if isinstance(a, torch.Tensor) else a


def _workload(scene: Path) -> None:
    """A native training step or two, a frame, packed marching with compositing, and SH through a backward."""
    from ngp_app.compute import get_ops
    from ngp_app.config import load_config
    from ngp_app.data.loaders import load_scene
    from ngp_app.render.renderer import render_rgba
    from ngp_app.train.trainer import Trainer

    config = load_config(
        "small",
        {
            "encoding": {"log2_hashmap_size": 12},
            "training": {"target_batch_size_cpu": 1024},
            "density_grid": {"resolution": 32, "mark_untrained": False},
        },
    )
    trainer = Trainer(load_scene(scene, "train", downscale=16), config, backend="native", seed=0)
    for _ in range(2):  # the second step adds the table gradient into the existing .grad (accumulate)
        trainer.step()
    render_rgba(trainer.model, trainer.grid, trainer.aabb, trainer.scene.camera(0).scaled(8, 8), trainer.march)
    ops = get_ops("native")
    g = torch.Generator().manual_seed(0)
    o = torch.full((16, 3), 0.5) + torch.randn(16, 3, generator=g)
    d = 0.5 - o
    d = d / d.norm(dim=-1, keepdim=True)
    s = ops.march(o, d, trainer.grid, trainer.aabb, trainer.march)
    sigmas = torch.rand(s.t.shape[0], generator=g).requires_grad_()
    rgbs = torch.rand(s.t.shape[0], 3, generator=g).requires_grad_()
    out = ops.composite(sigmas, rgbs, s.t, s.dt, s.ray_indices, s.offsets, 16)
    (out["rgb"].sum() + out["depth"].sum()).backward()
    dirs = torch.nn.functional.normalize(torch.randn(32, 3, generator=g), dim=-1).requires_grad_()
    ops.sh(dirs, 4).sum().backward()


Calls = dict[str, dict[tuple[bool, ...], tuple[Any, ...]]]


@pytest.fixture(scope="module")
def recorded_calls(demo_scene: Path) -> Calls:
    """The ``ngp::`` calls of the workload, by op and pattern of None arguments."""
    native_ops._ops()  # build and load the extension
    recorder = Recorder()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(native_ops, "_ops", lambda: recorder)
        _workload(demo_scene)
    return recorder.calls


def test_every_custom_op_passes_opcheck(recorded_calls: Calls) -> None:
    registered = sorted(n.split("::")[1] for n in torch._C._dispatch_get_all_op_names() if n.startswith("ngp::"))
    assert sorted(recorded_calls) == registered  # every op ran (a new op needs a call in the workload)
    assert len(recorded_calls["hash_grid_bwd"]) == 2  # with and without accumulate
    for name, calls in recorded_calls.items():
        for args in calls.values():
            torch.library.opcheck(getattr(torch.ops.ngp, name).default, args, test_utils=CHECKS)


def test_fake_kernels_give_the_real_outputs_shapes(recorded_calls: Calls) -> None:
    """Each fake kernel (FakeTensorMode) against the real op: the same outputs, None where the op returns none, and
    the same shape, dtype and device; a data-dependent size (``march_rays``' samples) is a symbol in the fake."""
    symbolic = set()
    for name, calls in recorded_calls.items():
        op = getattr(torch.ops.ngp, name).default
        for args in calls.values():
            real = _flat(op(*(_clone(a) for a in args)))
            with FakeTensorMode(shape_env=ShapeEnv()) as mode:
                fake = _flat(
                    op(*(mode.from_tensor(a, static_shapes=True) if isinstance(a, torch.Tensor) else a for a in args))
                )
            assert len(fake) == len(real), name
            for f, r in zip(fake, real):
                assert (f is None) == (r is None), name
                if r is None:
                    continue
                assert (f.dtype, f.device, f.dim()) == (r.dtype, r.device, r.dim()), name
                for fd, rd in zip(f.shape, r.shape):
                    if isinstance(fd, torch.SymInt):
                        symbolic.add(name)
                    else:
                        assert fd == rd, (name, f.shape, r.shape)
    assert symbolic == {"march_rays"}


def _flat(out: Any) -> list[torch.Tensor | None]:
    return list(out) if isinstance(out, (tuple, list)) else [out]
