"""The public path of the model zoo, which lives in minigrad.app.models."""
from minigrad.app.models import MODELS, BasicBlock, build_model  # noqa: F401
