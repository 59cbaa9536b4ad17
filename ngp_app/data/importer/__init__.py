"""Import your own capture: a folder of photos, a video or a COLMAP project -> a scene (``ngp import``).

    from ngp_app.data.importer import import_scene, ImportOptions
    result = import_scene("my_video.mp4", "scenes/mine", ImportOptions(frames=120), progress=print)

Modules: ``sources`` (what the input is, staging images), ``video`` (frames by sharpness), ``sfm`` (pycolmap),
``convert`` (model -> transforms.json), ``conventions`` (poses, centring, scale, aabb), ``points`` (PLY),
``align`` (pose errors against known poses), ``progress`` (reports and cancel), ``pipeline`` (the whole run).
"""

from .pipeline import DEFAULT_FRAMES, ImportOptions, ImportResult, import_scene
from .progress import ImportProgress
from .sfm import CAMERA_MODELS, INSTALL_HINT, MATCHERS, SfmOptions
from .sources import detect_source

__all__ = [
    "CAMERA_MODELS",
    "DEFAULT_FRAMES",
    "INSTALL_HINT",
    "MATCHERS",
    "ImportOptions",
    "ImportProgress",
    "ImportResult",
    "SfmOptions",
    "detect_source",
    "import_scene",
]
