"""Training: the trainer loop, losses, learning-rate schedule and metrics."""
