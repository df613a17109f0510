"""The public path of the checkpoints, which live in minigrad.app.checkpoint."""
from minigrad.app.checkpoint import FORMAT, load_checkpoint, save_checkpoint  # noqa: F401
