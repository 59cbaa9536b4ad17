"""Scenes: loading transforms.json / NeRF-synthetic folders, cameras and rays, the procedural demo scene."""
