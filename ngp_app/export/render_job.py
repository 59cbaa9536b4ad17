"""Render jobs (``ngp video --job JOB.json``): the options of one ``ngp video`` in a file, so a path authored on one
machine (the app's *Save render job*, or ``ngp video ... --write-job``) renders on another. The schema is
``schema.job.RenderJob``; file names in a job are relative to its folder, and a camera path of our format goes
inside it (``camera_path``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: ``ngp video`` options a job may hold (its keys of the same names)
JOB_OPTIONS = (
    "snapshot", "out", "path", "dataparser_transforms", "frames", "fps", "seconds", "width", "height", "fov",
    "radius", "elevation", "loop", "mode", "background", "look", "spp", "camera_model",
)  # fmt: skip
#: the options among them that name files
JOB_FILES = ("snapshot", "out", "path", "dataparser_transforms")


def is_file_option(name: str, value: Any) -> bool:
    """Whether option ``name``'s ``value`` is a file name (``path`` orbit and train are not)."""
    return name in JOB_FILES and not (name == "path" and value in ("orbit", "train"))


def job_contents(options: dict[str, Any], target: str | Path, camera_path: dict[str, Any] | None = None) -> dict:
    """The job file's contents for ``options`` (``JOB_OPTIONS`` names; None: not set), written at ``target``: file
    names relative to its folder, a camera-path file of our format (or ``camera_path``, our format's JSON) inline;
    schema-checked."""
    from ..schema import read_json, validate
    from ..schema.job import JOB_FORMAT, JOB_VERSION, RenderJob
    from .path_files import path_format

    folder = Path(target).resolve().parent
    job: dict[str, Any] = {"format": JOB_FORMAT, "version": JOB_VERSION}
    for name in JOB_OPTIONS:
        value = options.get(name)
        if value is None:
            continue
        if is_file_option(name, value):
            if name == "path" and Path(value).is_file() and path_format(value) == "ngp-app":
                job["camera_path"] = read_json(value)
                continue
            value = os.path.relpath(Path(value).resolve(), folder)
        job[name] = list(value) if name == "background" else value
    if camera_path is not None:
        job["camera_path"] = camera_path
    validate(RenderJob, job, str(target))
    return job


def write_render_job(target: str | Path, options: dict[str, Any], camera_path: dict[str, Any] | None = None) -> Path:
    """Write the job of ``options`` (as ``job_contents``) at ``target`` atomically, after the checks every output
    gets; returns its path."""
    from ..fileio import atomic_write_text
    from ..outputs import check_output_file

    p = check_output_file(target, (".json",), 1 << 20, "job file")
    job = job_contents(options, p, camera_path)
    atomic_write_text(p, json.dumps(job, indent=1) + "\n")
    log.info("wrote the render job %s (render it with: ngp video --job %s)", p, p)
    return p
