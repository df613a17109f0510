"""The public path of the checkpoints, which live in minigrad.app.checkpoint."""
from minigrad.app.checkpoint import FORMAT, load_checkpoint, remove_stale_tmp, save_checkpoint  # noqa: F401
