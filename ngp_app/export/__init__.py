"""Exports of a trained model: camera-path videos (``video``) and meshes (``mesh``)."""
