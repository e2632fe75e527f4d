"""Compatibility path: checkpoints now live in :mod:`r2mfnet.checkpoint`.

Reading a checkpoint is needed by inference and evaluation as well as training, and those must
not import the training package, so the module moved down to the package's floor.
"""
from r2mfnet.checkpoint import (  # noqa: F401
    FORMAT, VERSION, build_model_from_state, convert_trusted, load_checkpoint, load_model,
    model_change, model_config_of, resolve_model_config, same_model, save_checkpoint, unwrap,
)
